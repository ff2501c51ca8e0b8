/**
 * Google's predefined roles, as data: role name → the permissions it grants. Only the services
 * Tollgate serves are listed (Binary Authorization, Container Analysis, Cloud KMS, Cloud Run,
 * Resource Manager, Service Usage, Logging, IAM service-account use), plus the basic roles
 * owner/editor/viewer, which are computed from the catalog of every permission named here.
 *
 * `binaryauthorization.policy.evaluate` is Tollgate's own permission (the evaluate API); it is
 * granted wherever a policy reader or evaluator role is.
 */

/** Expands `svc.res.{a,b}` into `svc.res.a`, `svc.res.b` so the tables below stay readable. */
function expand(...specs: readonly string[]): string[] {
  return specs.flatMap((s) => {
    const m = /^(.*)\{([^}]*)\}$/.exec(s);
    if (m === null) return [s];
    return (m[2] as string).split(',').map((v) => `${m[1] as string}${v.trim()}`);
  });
}

const PROJECT_READ = expand('resourcemanager.projects.{get,list}');

// --- Binary Authorization -------------------------------------------------------------------

const BA_ATTESTORS_ALL = expand('binaryauthorization.attestors.{create,delete,get,getIamPolicy,list,setIamPolicy,update,verifyImageAttested}');
const BA_CV_ALL = expand('binaryauthorization.continuousValidationConfig.{get,getIamPolicy,setIamPolicy,update}');
const BA_PLATFORM_ALL = expand('binaryauthorization.platformPolicies.{create,delete,evaluatePolicy,get,list,replace}');
const BA_POLICY_ALL = expand('binaryauthorization.policy.{evaluate,evaluatePolicy,get,getIamPolicy,setIamPolicy,update}');
const BA_ALL = [...BA_ATTESTORS_ALL, ...BA_CV_ALL, ...BA_PLATFORM_ALL, ...BA_POLICY_ALL];

// --- Container Analysis ---------------------------------------------------------------------

const CA_NOTES_ALL = expand('containeranalysis.notes.{attachOccurrence,create,delete,get,getIamPolicy,list,listOccurrences,setIamPolicy,update}');
const CA_OCCURRENCES_ALL = expand('containeranalysis.occurrences.{create,delete,get,getIamPolicy,list,setIamPolicy,update}');
const CA_NOTES_EDITOR = expand('containeranalysis.notes.{attachOccurrence,create,delete,get,list,update}');

// --- Cloud KMS ------------------------------------------------------------------------------

const KMS_LOCATIONS = expand('cloudkms.locations.{get,list}');
const KMS_ADMIN = [
  ...expand(
    'cloudkms.keyRings.{create,get,list,getIamPolicy,setIamPolicy}',
    'cloudkms.cryptoKeys.{create,get,list,update,getIamPolicy,setIamPolicy}',
    'cloudkms.cryptoKeyVersions.{create,get,list,update,destroy,restore}',
  ),
  ...KMS_LOCATIONS,
];
const KMS_VIEWER = [
  ...expand('cloudkms.keyRings.{get,list,getIamPolicy}', 'cloudkms.cryptoKeys.{get,list,getIamPolicy}', 'cloudkms.cryptoKeyVersions.{get,list}'),
  ...KMS_LOCATIONS,
];

// --- Cloud Run ------------------------------------------------------------------------------

const RUN_VIEWER = expand(
  'run.services.{get,list,getIamPolicy}',
  'run.revisions.{get,list}',
  'run.configurations.{get,list}',
  'run.routes.{get,list}',
  'run.locations.list',
  'run.operations.{get,list}',
);
const RUN_DEVELOPER = [...RUN_VIEWER, ...expand('run.services.{create,update,delete}', 'run.revisions.delete')];
const RUN_ADMIN = [...RUN_DEVELOPER, ...expand('run.services.setIamPolicy', 'run.routes.invoke')];

// --- Resource Manager, Service Usage, Logging, IAM --------------------------------------------

const RM_ALL = expand('resourcemanager.projects.{get,list,getIamPolicy,setIamPolicy}');
const SU_ALL = expand('serviceusage.services.{enable,disable,get,list}');
const LOGGING_ALL = expand('logging.logEntries.list', 'logging.privateLogEntries.list');
const IAM_SA_USER = expand('iam.serviceAccounts.{actAs,get,list}');

/** Predefined (non-basic) roles. */
const PREDEFINED: Readonly<Record<string, readonly string[]>> = {
  // Binary Authorization (every role also grants reading the project)
  'roles/binaryauthorization.attestorsAdmin': [...BA_ATTESTORS_ALL, ...PROJECT_READ],
  'roles/binaryauthorization.attestorsEditor': [...expand('binaryauthorization.attestors.{create,delete,get,list,update,verifyImageAttested}'), ...PROJECT_READ],
  'roles/binaryauthorization.attestorsVerifier': [...expand('binaryauthorization.attestors.{get,list,verifyImageAttested}'), ...PROJECT_READ],
  'roles/binaryauthorization.attestorsViewer': [...expand('binaryauthorization.attestors.{get,list}'), ...PROJECT_READ],
  'roles/binaryauthorization.policyAdmin': [...BA_CV_ALL, ...BA_PLATFORM_ALL, ...BA_POLICY_ALL, ...PROJECT_READ],
  'roles/binaryauthorization.policyEditor': [
    ...expand('binaryauthorization.continuousValidationConfig.{get,update}'),
    ...BA_PLATFORM_ALL,
    ...expand('binaryauthorization.policy.{evaluate,evaluatePolicy,get,update}'),
    ...PROJECT_READ,
  ],
  'roles/binaryauthorization.policyEvaluator': [
    ...expand('binaryauthorization.platformPolicies.{evaluatePolicy,get,list}'),
    ...expand('binaryauthorization.policy.{evaluate,evaluatePolicy,get}'),
    ...PROJECT_READ,
  ],
  'roles/binaryauthorization.policyViewer': [
    'binaryauthorization.continuousValidationConfig.get',
    ...expand('binaryauthorization.platformPolicies.{get,list}'),
    ...expand('binaryauthorization.policy.{evaluate,get}'),
    ...PROJECT_READ,
  ],
  'roles/binaryauthorization.admin': [...BA_ALL, ...PROJECT_READ],
  'roles/binaryauthorization.editor': [...BA_ALL.filter((p) => !/\.(getIamPolicy|setIamPolicy)$/.test(p)), ...PROJECT_READ],
  'roles/binaryauthorization.viewer': [
    ...BA_ALL.filter((p) => /\.(get|list)$/.test(p)),
    'binaryauthorization.policy.evaluate',
    ...PROJECT_READ,
  ],
  'roles/binaryauthorization.serviceAgent': [
    ...expand('binaryauthorization.attestors.{get,list,verifyImageAttested}'),
    'binaryauthorization.platformPolicies.evaluatePolicy',
    ...expand('binaryauthorization.policy.{evaluate,evaluatePolicy}'),
    ...expand('containeranalysis.notes.{get,list,listOccurrences}', 'containeranalysis.occurrences.{get,list}'),
    ...PROJECT_READ,
  ],

  // Container Analysis
  'roles/containeranalysis.admin': [...CA_NOTES_ALL, ...CA_OCCURRENCES_ALL, ...PROJECT_READ],
  'roles/containeranalysis.viewer': [
    ...expand('containeranalysis.notes.{get,getIamPolicy,list}', 'containeranalysis.occurrences.{get,getIamPolicy,list}'),
    ...PROJECT_READ,
  ],
  'roles/containeranalysis.notes.attacher': expand('containeranalysis.notes.{attachOccurrence,get}'),
  'roles/containeranalysis.notes.occurrences.viewer': expand('containeranalysis.notes.{get,listOccurrences}'),
  'roles/containeranalysis.notes.editor': CA_NOTES_EDITOR,
  // The separation-of-duties page spells the notes editor role this way; accept both spellings.
  'roles/containeranalysis.notesEditor': CA_NOTES_EDITOR,
  'roles/containeranalysis.notes.viewer': expand('containeranalysis.notes.{get,list}'),
  'roles/containeranalysis.occurrences.editor': expand('containeranalysis.occurrences.{create,delete,get,list,update}'),
  'roles/containeranalysis.occurrences.viewer': expand('containeranalysis.occurrences.{get,list}'),

  // Cloud KMS (admin manages keys but cannot use them: separation of duties, as in Google)
  'roles/cloudkms.admin': KMS_ADMIN,
  'roles/cloudkms.viewer': KMS_VIEWER,
  'roles/cloudkms.signer': ['cloudkms.cryptoKeyVersions.useToSign', ...KMS_LOCATIONS],
  'roles/cloudkms.verifier': [...expand('cloudkms.cryptoKeyVersions.{useToVerify,viewPublicKey}'), ...KMS_LOCATIONS],
  'roles/cloudkms.signerVerifier': [...expand('cloudkms.cryptoKeyVersions.{useToSign,useToVerify,viewPublicKey}'), ...KMS_LOCATIONS],
  'roles/cloudkms.publicKeyViewer': ['cloudkms.cryptoKeyVersions.viewPublicKey', ...KMS_LOCATIONS],
  // Accepted so bindings copied from real projects validate; Tollgate's KMS does no encryption.
  'roles/cloudkms.cryptoKeyEncrypterDecrypter': [...expand('cloudkms.cryptoKeyVersions.{useToEncrypt,useToDecrypt}'), ...KMS_LOCATIONS],

  // Cloud Run
  'roles/run.invoker': ['run.routes.invoke'],
  'roles/run.viewer': RUN_VIEWER,
  'roles/run.developer': RUN_DEVELOPER,
  'roles/run.admin': RUN_ADMIN,

  // Resource Manager, Service Usage, Logging, IAM
  'roles/resourcemanager.projectIamAdmin': expand('resourcemanager.projects.{get,getIamPolicy,setIamPolicy}'),
  'roles/serviceusage.serviceUsageAdmin': [...SU_ALL, ...PROJECT_READ],
  'roles/serviceusage.serviceUsageConsumer': expand('serviceusage.services.{get,list}'),
  'roles/serviceusage.serviceUsageViewer': [...expand('serviceusage.services.{get,list}'), ...PROJECT_READ],
  'roles/logging.viewer': ['logging.logEntries.list', ...PROJECT_READ],
  'roles/logging.privateLogViewer': [...LOGGING_ALL, ...PROJECT_READ],
  'roles/logging.admin': [...LOGGING_ALL, ...PROJECT_READ],
  'roles/iam.serviceAccountUser': [...IAM_SA_USER, ...PROJECT_READ],
};

/** Every permission Tollgate knows: the union of the predefined roles, plus project administration. */
export const ALL_PERMISSIONS: ReadonlySet<string> = new Set([
  ...Object.values(PREDEFINED).flat(),
  ...RM_ALL,
  ...SU_ALL,
  ...LOGGING_ALL,
  ...KMS_ADMIN,
  ...RUN_ADMIN,
]);

const IAM_ADMIN = /\.setIamPolicy$/;
/** Verbs that only read (the basic viewer role). */
const READ_ONLY = /\.(get|list|getIamPolicy|listOccurrences|viewPublicKey|evaluate|evaluatePolicy)$/;

/** Basic roles, computed from the catalog. */
const BASIC: Readonly<Record<string, readonly string[]>> = {
  // Everything Tollgate knows, on the resource and all below it.
  'roles/owner': [...ALL_PERMISSIONS],
  // Everything except changing who may do what, and private (data access) logs.
  'roles/editor': [...ALL_PERMISSIONS].filter((p) => !IAM_ADMIN.test(p) && p !== 'logging.privateLogEntries.list'),
  // Reading only.
  'roles/viewer': [...[...ALL_PERMISSIONS].filter((p) => READ_ONLY.test(p)), 'logging.logEntries.list'],
};

const ROLES: ReadonlyMap<string, ReadonlySet<string>> = new Map(
  Object.entries({ ...PREDEFINED, ...BASIC }).map(([role, perms]) => [role, new Set(perms)] as const),
);

/** Every role name Tollgate accepts in a binding, sorted. */
export const KNOWN_ROLES: readonly string[] = [...ROLES.keys()].sort();

/** The permissions a role grants; undefined for a role Tollgate does not know. */
export function permissionsOf(role: string): ReadonlySet<string> | undefined {
  return ROLES.get(role);
}

/** Whether `permission` is one Tollgate knows (part of some role). */
export function isKnownPermission(permission: string): boolean {
  return ALL_PERMISSIONS.has(permission);
}
