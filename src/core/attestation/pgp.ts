/**
 * PGP attestor keys and PGP attestations: an attestor key is `gpg --export --armor` output, an
 * attestation signature is an ASCII-armored *attached* signed message (`gpg --armor --sign`) whose
 * literal data is the signed payload.
 */
import type * as OpenPgp from 'openpgp';
import type { PublicKey } from 'openpgp';
import { err, ok, problem, describeError, type Result } from '../result.js';
import type { SignatureFailure } from './pkix.js';

/** Largest armored public key accepted (keys with many certifications are still far below this). */
const MAX_ARMORED_KEY_LENGTH = 1024 * 1024;
/**
 * Largest armored message accepted. An attestation payload is a few hundred bytes; the cap also
 * bounds what a compressed message can expand to before openpgp has checked any signature.
 */
const MAX_ARMORED_MESSAGE_LENGTH = 64 * 1024;

/**
 * openpgp is loaded on first use: it is a large library (about 16 MB of a server's memory), and
 * most deployments have no PGP attestor at all.
 */
const loadOpenpgp = (): Promise<typeof OpenPgp> => import('openpgp');

const ARMOR_BEGIN = /^-----BEGIN PGP ([^-\r\n]+)-----[ \t]*$/gm;

/** The armor types (`PUBLIC KEY BLOCK`, `MESSAGE`, …) of every armor header line, in order. */
function armorTypes(text: string): string[] {
  return [...text.matchAll(ARMOR_BEGIN)].map((m) => m[1] ?? '');
}

/**
 * Parses `gpg --export --armor` output (LF or CRLF) holding exactly one public key, and computes
 * its upper-case hex V4 fingerprint (40 characters). Never throws.
 */
export async function parsePgpPublicKey(armored: string): Promise<Result<{ key: PublicKey; fingerprint: string }>> {
  const bad = (detail: string): Result<never> => err(problem('INVALID_PUBLIC_KEY', `asciiArmoredPgpPublicKey: ${detail}`, 'asciiArmoredPgpPublicKey'));
  try {
    if (typeof armored !== 'string' || armored.trim() === '') return bad('is empty; expected `gpg --export --armor` output');
    if (armored.length > MAX_ARMORED_KEY_LENGTH) return bad(`is longer than ${MAX_ARMORED_KEY_LENGTH} characters`);
    const types = armorTypes(armored);
    if (types.length === 0) return bad('is not ASCII-armored (no "-----BEGIN PGP PUBLIC KEY BLOCK-----" line)');
    if (types.length > 1) return bad(`holds ${types.length} armored blocks; expected exactly one public key block`);
    const type = types[0] as string;
    if (type === 'PRIVATE KEY BLOCK') return bad('is a private key block; supply only the public key (`gpg --export --armor`)');
    if (type !== 'PUBLIC KEY BLOCK') return bad(`is a PGP ${type}, not a PUBLIC KEY BLOCK`);

    const openpgp = await loadOpenpgp();
    let keys: OpenPgp.Key[];
    try {
      keys = await openpgp.readKeys({ armoredKeys: armored });
    } catch (e) {
      return bad(`cannot be read as an OpenPGP public key: ${describeError(e)}`);
    }
    if (keys.length !== 1) return bad(`holds ${keys.length} keys; expected exactly one`);
    const key = keys[0] as OpenPgp.Key;
    if (key.isPrivate()) return bad('holds secret key material; supply only the public key');
    const fingerprint = key.getFingerprint().toUpperCase();
    if (!/^[0-9A-F]{40}$/.test(fingerprint)) {
      return bad(`is not a version 4 key (fingerprint ${fingerprint}); only V4 keys are supported`);
    }
    return ok({ key: key.toPublic(), fingerprint });
  } catch (e) {
    return bad(`cannot be read: ${describeError(e)}`);
  }
}

/** Packet types that mean the message is encrypted rather than (only) signed. */
function encryptionPackets(openpgp: typeof OpenPgp): OpenPgp.enums.packet[] {
  const { packet } = openpgp.enums;
  return [packet.publicKeyEncryptedSessionKey, packet.symEncryptedSessionKey, packet.symmetricallyEncryptedData, packet.symEncryptedIntegrityProtectedData, packet.aeadEncryptedData];
}

/**
 * When the signature stops verifying by itself: its own expiration time, if it has one. (The
 * key's expiry does not matter: a signature made while the key was valid stays valid, as for
 * `gpg --verify`; a revoked or replaced key changes the attestor.) If it cannot be read, `now`:
 * the verification then holds for this moment only, never for longer than it should.
 */
async function validityEnd(sig: OpenPgp.VerifyMessageResult['signatures'][number], now: Date): Promise<Date | undefined> {
  try {
    const end = (await sig.signature).packets[0]?.getExpirationTime();
    return end instanceof Date ? end : undefined;
  } catch {
    return now;
  }
}

/**
 * Verifies an ASCII-armored attached signed message (`gpg --armor --sign`) against `key` at time
 * `now`: at least one signature must be valid and made by the key's primary key or one of its
 * signing subkeys. Returns the embedded literal data (the signed payload). Never throws.
 */
export async function verifyPgpAttachedMessage(
  key: PublicKey,
  armoredMessage: string,
  now: Date,
): Promise<Result<{ payload: Uint8Array; validUntil?: Date }, SignatureFailure>> {
  const malformed = (message: string): Result<never, SignatureFailure> => err({ code: 'MALFORMED_SIGNATURE', message });
  const bad = (message: string): Result<never, SignatureFailure> => err({ code: 'BAD_SIGNATURE', message });
  try {
    if (typeof armoredMessage !== 'string' || armoredMessage.trim() === '') {
      return malformed('the PGP signature is empty; expected an ASCII-armored signed message (`gpg --armor --sign`)');
    }
    if (armoredMessage.length > MAX_ARMORED_MESSAGE_LENGTH) {
      return malformed(`the PGP message is longer than ${MAX_ARMORED_MESSAGE_LENGTH} characters`);
    }
    if (!(now instanceof Date) || Number.isNaN(now.getTime())) return bad('no valid verification time was given');

    const types = armorTypes(armoredMessage);
    if (types.length === 0) {
      return malformed('the PGP signature is not ASCII-armored (no "-----BEGIN PGP MESSAGE-----" line); sign with `gpg --armor --sign`');
    }
    const type = types[0] as string;
    if (type === 'SIGNED MESSAGE') {
      return malformed('clearsigned messages (`gpg --clearsign`) are not supported; sign with `gpg --armor --sign`');
    }
    if (type === 'SIGNATURE') {
      return malformed('detached signatures (`gpg --detach-sign`) are not supported: they carry no payload; sign with `gpg --armor --sign`');
    }
    if (type !== 'MESSAGE') return malformed(`expected a PGP MESSAGE, got a PGP ${type}`);
    if (types.length > 1) return malformed(`the PGP signature holds ${types.length} armored blocks; expected exactly one message`);

    const openpgp = await loadOpenpgp();
    let message: OpenPgp.Message<string>;
    try {
      message = await openpgp.readMessage({ armoredMessage });
    } catch (e) {
      return malformed(`the PGP message cannot be decoded: ${describeError(e)}`);
    }
    if (message.packets.filterByTag(...encryptionPackets(openpgp)).length > 0) {
      return malformed('the PGP message is encrypted; expected a message that is only signed');
    }
    let signerIds: OpenPgp.KeyID[];
    try {
      signerIds = message.getSigningKeyIDs();
    } catch (e) {
      return malformed(`the PGP message cannot be decoded: ${describeError(e)}`);
    }
    if (signerIds.length === 0) return malformed('the PGP message carries no signature');

    let result: OpenPgp.VerifyMessageResult<Uint8Array>;
    try {
      result = await openpgp.verify({
        message,
        verificationKeys: [key],
        date: now,
        format: 'binary',
        expectSigned: false,
      });
    } catch (e) {
      return malformed(`the PGP message cannot be processed: ${describeError(e)}`);
    }
    // Inspect every signature: openpgp reports a failed check by rejecting `verified`.
    const outcomes = await Promise.allSettled(result.signatures.map((s) => s.verified));
    const ownIds = key.getKeys().map((k) => k.getKeyID());
    const fingerprint = key.getFingerprint().toUpperCase();
    const reasons: string[] = [];
    for (let i = 0; i < result.signatures.length; i++) {
      const sig = result.signatures[i] as (typeof result.signatures)[number];
      const outcome = outcomes[i] as PromiseSettledResult<true>;
      const ours = ownIds.some((id) => id.equals(sig.keyID));
      if (outcome.status === 'fulfilled' && outcome.value === true && ours) {
        const data = result.data;
        if (!(data instanceof Uint8Array)) return malformed('the PGP message has no literal data');
        const validUntil = await validityEnd(sig, now);
        return ok({ payload: data, ...(validUntil === undefined ? {} : { validUntil }) });
      }
      if (ours) {
        const why = outcome.status === 'rejected' ? describeError(outcome.reason) : 'not verified';
        reasons.push(`signature by key ID ${sig.keyID.toHex().toUpperCase()} does not verify: ${why}`);
      }
    }
    if (reasons.length === 0) {
      const ids = result.signatures.map((s) => s.keyID.toHex().toUpperCase()).join(', ');
      return bad(`the PGP message is signed by key ID ${ids}, not by the attestor key ${fingerprint}`);
    }
    return bad(`the PGP message does not verify with key ${fingerprint}: ${reasons.join('; ')}`);
  } catch (e) {
    return malformed(`the PGP message cannot be processed: ${describeError(e)}`);
  }
}
