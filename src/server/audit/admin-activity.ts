/**
 * Admin Activity audit entries: every write method (and IAM change) is recorded with Google's
 * `methodName`, the principal and the request, in the shape of a Cloud Audit Log LogEntry.
 */
import type { Principal } from '../iam/principal.js';
import type { JsonObject, StoreOps } from '../store/store.js';
import { nowTimestamp } from '../store/columns.js';
import { randomUUID } from 'node:crypto';

export interface AdminActivity {
  /** e.g. `binaryauthorization.googleapis.com` */
  readonly serviceName: string;
  /** e.g. `google.cloud.binaryauthorization.v1.BinauthzManagementServiceV1.CreateAttestor` */
  readonly methodName: string;
  readonly resourceName: string;
  readonly project: string;
  readonly principal: Principal;
  /** The request as received (never holding key material: KMS requests hold digests only). */
  readonly request?: unknown;
  /** A short form of the response (e.g. the resource name), when useful. */
  readonly response?: unknown;
}

export async function recordAdminActivity(store: StoreOps, a: AdminActivity): Promise<void> {
  const time = nowTimestamp();
  const entry: JsonObject = {
    logName: `projects/${a.project}/logs/cloudaudit.googleapis.com%2Factivity`,
    insertId: randomUUID(),
    timestamp: time,
    receiveTimestamp: time,
    severity: 'NOTICE',
    resource: { type: 'audited_resource', labels: { project_id: a.project, service: a.serviceName, method: a.methodName } },
    protoPayload: {
      '@type': 'type.googleapis.com/google.cloud.audit.AuditLog',
      serviceName: a.serviceName,
      methodName: a.methodName,
      resourceName: a.resourceName,
      authenticationInfo: { principalEmail: a.principal.email },
      status: {},
      ...(a.request === undefined ? {} : { request: a.request as JsonObject }),
      ...(a.response === undefined ? {} : { response: a.response as JsonObject }),
    },
  };
  await store.appendAudit([{ time, project: a.project, logId: 'cloudaudit.googleapis.com/activity', entry }]);
}
