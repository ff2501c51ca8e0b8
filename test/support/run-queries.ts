/**
 * The seeds' Cloud Run audit queries, written as the walkthroughs write them (one term per line):
 * seed 002's three (blocked, dry run, breakglass) and seed 001's Binary Authorization query. Shared
 * by the unit test of the entries (test/run-log.test.ts) and the gcloud end-to-end test
 * (test/run-gcloud.test.ts), so both check the very same text.
 */
export const BLOCKED_QUERY = ['resource.type="cloud_run_revision"', 'logName:"cloudaudit.googleapis.com%2Fsystem_event"', 'protoPayload.response.status.conditions.reason="ContainerImageUnauthorized"'].join('\n');
export const DRY_RUN_QUERY = ['resource.type="cloud_run_revision"', 'logName:"cloudaudit.googleapis.com%2Fsystem_event"', '"dry run"'].join('\n');
export const BREAKGLASS_QUERY = ['protoPayload.@type="type.googleapis.com/google.cloud.audit.AuditLog"', '"run.googleapis.com/binary-authorization-breakglass"'].join('\n');
export const BINAUTHZ_QUERY = ['', '  resource.type="cloud_run_revision"', '  AND protoPayload.serviceName="binaryauthorization.googleapis.com"', ''].join('\n');
