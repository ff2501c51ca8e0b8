/**
 * Attestors, their keys, and attestation occurrences as the core sees them after parsing.
 * Wire shapes (v1 `userOwnedGrafeasNote`, v1beta1 `userOwnedDrydockNote`, Grafeas v1 and v1beta1
 * occurrences) are decoded into these by the parse modules next to this file.
 */
import type { KeyObject } from 'node:crypto';
import type { PublicKey as PgpPublicKey } from 'openpgp';

/** Canonical Binary Authorization signature algorithm names (reference §1.5, first-defined names). */
export const SIGNATURE_ALGORITHMS = [
  'RSA_PSS_2048_SHA256',
  'RSA_PSS_3072_SHA256',
  'RSA_PSS_4096_SHA256',
  'RSA_PSS_4096_SHA512',
  'RSA_SIGN_PKCS1_2048_SHA256',
  'RSA_SIGN_PKCS1_3072_SHA256',
  'RSA_SIGN_PKCS1_4096_SHA256',
  'RSA_SIGN_PKCS1_4096_SHA512',
  'ECDSA_P256_SHA256',
  'ECDSA_P384_SHA384',
  'ECDSA_P521_SHA512',
] as const;
export type SignatureAlgorithm = (typeof SIGNATURE_ALGORITHMS)[number];

/** A parsed, ready-to-use attestor key. Parsed once; verification never re-parses a PEM. */
export type AttestorKey =
  | {
      readonly kind: 'pkix';
      /** The id signatures must carry (`publicKeyId`). */
      readonly id: string;
      readonly comment?: string;
      readonly algorithm: SignatureAlgorithm;
      readonly publicKeyPem: string;
      readonly key: KeyObject;
    }
  | {
      readonly kind: 'pgp';
      /** Upper-case 40-hex V4 fingerprint, computed from the key (any caller-supplied id is ignored). */
      readonly id: string;
      readonly comment?: string;
      readonly asciiArmoredPgpPublicKey: string;
      readonly key: PgpPublicKey;
    };

export interface Attestor {
  /** `projects/P/attestors/A` */
  readonly name: string;
  readonly description?: string;
  /** `projects/P/notes/N` */
  readonly noteReference: string;
  readonly publicKeys: readonly AttestorKey[];
  readonly delegationServiceAccountEmail?: string;
  readonly updateTime?: string;
  readonly etag?: string;
}

export interface OccurrenceSignature {
  readonly publicKeyId: string;
  /** Raw signature bytes (for PGP: the bytes of the ASCII-armored attached message). */
  readonly signature: Uint8Array;
}

/** An ATTESTATION occurrence, normalized from the Grafeas v1 or the legacy v1beta1 shape. */
export interface AttestationOccurrence {
  /** `projects/P/occurrences/ID`; may be empty for an occurrence not yet stored (validate API). */
  readonly name: string;
  readonly noteName: string;
  readonly resourceUri: string;
  /** Absent for the v1beta1 pgpSignedAttestation form, whose payload lives inside the message. */
  readonly serializedPayload?: Uint8Array;
  readonly signatures: readonly OccurrenceSignature[];
  /**
   * Set when the occurrence is an attestation but part of it cannot be decoded (non-base64 bytes,
   * a signature without a key id). It is kept, not dropped, so the decision can say why it failed.
   */
  readonly defect?: { readonly code: AttestationRejectionCode; readonly message: string };
}

/**
 * The outcome of checking one occurrence against one attestor, before any image is looked at.
 * A verified check says which key verified which payload; whether it covers a given image is
 * decided by the evaluation (digest equality), so one verification serves every image.
 */
export type AttestationCheck =
  | {
      readonly kind: 'verified';
      readonly occurrence: string;
      readonly resourceUri: string;
      readonly keyId: string;
      /** `critical.image.docker-manifest-digest` of the authenticated payload. */
      readonly payloadDigest: string;
      readonly dockerReference: string;
      /**
       * When this verification stops holding by itself: a PGP signature with an expiration time
       * (`gpg --default-sig-expire`). Absent when nothing expires. Whoever keeps a check must
       * check again from then on.
       */
      readonly validUntil?: Date;
    }
  | {
      readonly kind: 'rejected';
      readonly occurrence: string;
      readonly resourceUri: string;
      /** Machine-readable reason, one of ATTESTATION_REJECTION_CODES. */
      readonly code: AttestationRejectionCode;
      readonly message: string;
    };

export const ATTESTATION_REJECTION_CODES = [
  /** The occurrence is attached to a note other than the attestor's noteReference. */
  'NOTE_MISMATCH',
  /** No signature carries the id of any of the attestor's keys. */
  'NO_MATCHING_KEY',
  /** A key with that id exists but the signature does not verify under it. */
  'BAD_SIGNATURE',
  /** The signature bytes cannot be decoded (truncated DER, not an armored PGP message, …). */
  'MALFORMED_SIGNATURE',
  /** The signed payload is not a valid signature payload JSON. */
  'MALFORMED_PAYLOAD',
  /** `critical.type` is not one of the accepted values. */
  'UNKNOWN_PAYLOAD_TYPE',
  /** A PGP message's embedded payload differs from the occurrence's serializedPayload. */
  'PAYLOAD_MISMATCH',
  /** The occurrence carries no payload or no signature at all. */
  'MISSING_SIGNATURE',
] as const;
export type AttestationRejectionCode = (typeof ATTESTATION_REJECTION_CODES)[number];
