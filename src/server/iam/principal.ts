/** Who is calling. Every API request carries a bearer token that resolves to one principal. */
export interface Principal {
  /** `user` or `serviceAccount`, as in IAM member strings. */
  readonly type: 'user' | 'serviceAccount';
  /** The email-style id: `alice@example.com`, `ci@demo.iam.gserviceaccount.com`. */
  readonly email: string;
  /** Bootstrap admins may do everything, on every project (the admin token made on first start). */
  readonly superuser: boolean;
}

/** The IAM member string for a principal (`user:alice@example.com`). */
export function memberOf(p: Principal): string {
  return `${p.type}:${p.email}`;
}
