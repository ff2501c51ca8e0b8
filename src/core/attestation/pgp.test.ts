import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpgSigner, readFixture, readFixtureText, removeGpgSigners } from '../../../test/support/fixtures.js';
import { parsePgpPublicKey, verifyPgpAttachedMessage } from './pgp.js';

afterAll(removeGpgSigners);

/** Well after the fixtures were made; the fixture keys never expire. */
const NOW = new Date('2035-06-01T00:00:00Z');

const text = (name: string): string => readFixtureText('pgp', name);

async function key(name: string): Promise<openpgp.PublicKey> {
  const r = await parsePgpPublicKey(text(`${name}.pub.asc`));
  if (!r.ok) throw new Error(r.error.message);
  return r.value.key;
}

describe('parsePgpPublicKey', () => {
  for (const name of ['signer', 'other', 'subkey-signer']) {
    it(`${name}: fingerprint equals gpg --with-colons --fingerprint`, async () => {
      const r = await parsePgpPublicKey(text(`${name}.pub.asc`));
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.value.fingerprint).toBe(text(`${name}.fpr`).trim());
        expect(r.value.fingerprint).toMatch(/^[0-9A-F]{40}$/);
        expect(r.value.key.isPrivate()).toBe(false);
      }
    });
  }

  it('parses a CRLF armored key to the same fingerprint', async () => {
    const crlf = text('signer.pub.asc').replace(/\r?\n/g, '\r\n');
    expect(crlf).toContain('\r\n');
    const r = await parsePgpPublicKey(crlf);
    expect(r.ok && r.value.fingerprint).toBe(text('signer.fpr').trim());
  });

  it('refuses a private key block', async () => {
    const r = await parsePgpPublicKey(text('other.sec.asc'));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.message).toMatch(/private key/);
      expect(r.error.message.startsWith('asciiArmoredPgpPublicKey: ')).toBe(true);
    }
  });

  it('refuses a private key block relabelled as a public key block', async () => {
    const relabelled = text('other.sec.asc').replace(/PRIVATE KEY BLOCK/g, 'PUBLIC KEY BLOCK');
    const r = await parsePgpPublicKey(relabelled);
    expect(r.ok).toBe(false);
  });

  it('refuses two keys', async () => {
    const two = await parsePgpPublicKey(text('signer.pub.asc') + text('other.pub.asc'));
    expect(!two.ok && two.error.message).toMatch(/2 armored blocks/);
    const keys = await openpgp.readKeys({ armoredKeys: text('signer.pub.asc') });
    const other = await openpgp.readKeys({ armoredKeys: text('other.pub.asc') });
    const joined = new Uint8Array([...(keys[0] as openpgp.Key).write(), ...(other[0] as openpgp.Key).write()]);
    const oneBlock = openpgp.armor(openpgp.enums.armor.publicKey, joined);
    const r = await parsePgpPublicKey(oneBlock);
    expect(!r.ok && r.error.message).toMatch(/2 keys/);
  });

  it('refuses garbage, messages and signatures as keys', async () => {
    for (const input of ['', 'garbage', '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n', text('payload.json.asc'), text('detached.asc'), text('clearsigned.asc')]) {
      const r = await parsePgpPublicKey(input);
      expect(r.ok, input.slice(0, 60)).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('INVALID_PUBLIC_KEY');
    }
  });
});

describe('verifyPgpAttachedMessage', () => {
  let signer: openpgp.PublicKey;
  let other: openpgp.PublicKey;
  let subkeySigner: openpgp.PublicKey;
  beforeAll(async () => {
    signer = await key('signer');
    other = await key('other');
    subkeySigner = await key('subkey-signer');
  });

  it('verifies a gpg --armor --sign message and returns the exact payload bytes', async () => {
    const r = await verifyPgpAttachedMessage(signer, text('payload.json.asc'), NOW);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.value.payload).toBeInstanceOf(Uint8Array);
      expect(Buffer.from(r.value.payload).equals(readFixture('pgp', 'payload.json'))).toBe(true);
    }
  });

  it('verifies an uncompressed message and one signed with CRLF armor', async () => {
    const a = await verifyPgpAttachedMessage(signer, text('payload.uncompressed.asc'), NOW);
    expect(a.ok && Buffer.from(a.value.payload).equals(readFixture('pgp', 'payload.json'))).toBe(true);
    const b = await verifyPgpAttachedMessage(signer, text('payload.json.asc').replace(/\n/g, '\r\n'), NOW);
    expect(b.ok).toBe(true);
  });

  it('returns the payload that was signed, not some other one', async () => {
    const r = await verifyPgpAttachedMessage(signer, text('different-payload.asc'), NOW);
    expect(r.ok && Buffer.from(r.value.payload).equals(readFixture('pgp', 'different-payload.json'))).toBe(true);
  });

  it('verifies a message signed by a signing subkey of the attestor key', async () => {
    const r = await verifyPgpAttachedMessage(subkeySigner, text('subkey-signed.asc'), NOW);
    expect(r.ok && Buffer.from(r.value.payload).equals(readFixture('pgp', 'payload.json'))).toBe(true);
  });

  it('rejects a message signed by an unknown key as BAD_SIGNATURE', async () => {
    const r = await verifyPgpAttachedMessage(signer, text('other-signed.asc'), NOW);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('BAD_SIGNATURE');
      expect(r.error.message).toContain('not by the attestor key');
    }
    const reverse = await verifyPgpAttachedMessage(other, text('payload.json.asc'), NOW);
    expect(!reverse.ok && reverse.error.code).toBe('BAD_SIGNATURE');
    const ok = await verifyPgpAttachedMessage(other, text('other-signed.asc'), NOW);
    expect(ok.ok).toBe(true);
  });

  it('rejects a message whose literal data was altered as BAD_SIGNATURE', async () => {
    const { data } = await openpgp.unarmor(text('payload.uncompressed.asc'));
    const binary = Buffer.from(data as Uint8Array);
    const at = binary.indexOf(Buffer.from('docker-manifest-digest'));
    expect(at).toBeGreaterThan(0);
    binary[at] = 'D'.charCodeAt(0);
    const armored = openpgp.armor(openpgp.enums.armor.message, binary);
    const r = await verifyPgpAttachedMessage(signer, armored, NOW);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('BAD_SIGNATURE');
      expect(r.error.message).toMatch(/does not verify/);
    }
  });

  it('rejects a message whose armored text was tampered with', async () => {
    const armored = text('payload.json.asc');
    const lines = armored.split('\n');
    const i = 3;
    const line = lines[i] as string;
    const c = line[10] === 'A' ? 'B' : 'A';
    lines[i] = line.slice(0, 10) + c + line.slice(11);
    const r = await verifyPgpAttachedMessage(signer, lines.join('\n'), NOW);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(['BAD_SIGNATURE', 'MALFORMED_SIGNATURE']).toContain(r.error.code);
  });

  it('rejects a clearsigned message with a message that says so', async () => {
    const r = await verifyPgpAttachedMessage(signer, text('clearsigned.asc'), NOW);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('MALFORMED_SIGNATURE');
      expect(r.error.message).toMatch(/clearsigned/);
    }
  });

  it('rejects a detached signature with a message that says so', async () => {
    const r = await verifyPgpAttachedMessage(signer, text('detached.asc'), NOW);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('MALFORMED_SIGNATURE');
      expect(r.error.message).toMatch(/detached/);
    }
  });

  it('rejects an unsigned message as MALFORMED_SIGNATURE', async () => {
    const message = await openpgp.createMessage({ binary: readFixture('pgp', 'payload.json') });
    const armored = message.armor();
    const r = await verifyPgpAttachedMessage(signer, armored, NOW);
    expect(!r.ok && r.error.code).toBe('MALFORMED_SIGNATURE');
    if (!r.ok) expect(r.error.message).toMatch(/no signature/);
  });

  it('rejects a signature made after `now`', async () => {
    const r = await verifyPgpAttachedMessage(signer, text('payload.json.asc'), new Date('2001-01-01T00:00:00Z'));
    expect(!r.ok && r.error.code).toBe('BAD_SIGNATURE');
  });

  it('rejects keys, garbage and unarmored bytes as MALFORMED_SIGNATURE', async () => {
    const binary = (await openpgp.readMessage({ armoredMessage: text('payload.json.asc') })).write();
    for (const input of [
      '',
      'garbage',
      text('signer.pub.asc'),
      Buffer.from(binary).toString('latin1'),
      '-----BEGIN PGP MESSAGE-----\n\nAAAA\n-----END PGP MESSAGE-----\n',
      '-----BEGIN PGP MESSAGE-----\n\n!!!!\n-----END PGP MESSAGE-----\n',
      text('payload.json.asc') + text('payload.json.asc'),
      'x'.repeat(70_000),
    ]) {
      const r = await verifyPgpAttachedMessage(signer, input, NOW);
      expect(r.ok, input.slice(0, 40)).toBe(false);
      if (!r.ok) expect(r.error.code, input.slice(0, 40)).toBe('MALFORMED_SIGNATURE');
    }
  });

  it('succeeds when one of several signatures is by the attestor key', async () => {
    for (const k of [signer, other]) {
      const r = await verifyPgpAttachedMessage(k, text('multi-signed.asc'), NOW);
      expect(r.ok && Buffer.from(r.value.payload).equals(readFixture('pgp', 'payload.json'))).toBe(true);
    }
    const neither = await verifyPgpAttachedMessage(subkeySigner, text('multi-signed.asc'), NOW);
    expect(!neither.ok && neither.error.code).toBe('BAD_SIGNATURE');
  });
});

describe('verifyPgpAttachedMessage and time', () => {
  const DAY = 86_400_000;
  /** gpg signs with its clock stopped here. */
  const SIGNED_AT = new Date('2030-01-01T00:00:00Z');

  it('says until when a signature that expires holds, and refuses it after that', async () => {
    const signer = gpgSigner('never', SIGNED_AT);
    const parsed = await parsePgpPublicKey(signer.publicKey);
    if (!parsed.ok) throw new Error(parsed.error.message);
    const message = signer.sign(readFixture('pgp', 'payload.json'), '1d');
    const r = await verifyPgpAttachedMessage(parsed.value.key, message, new Date(SIGNED_AT.getTime() + 3_600_000));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(Buffer.from(r.value.payload).equals(readFixture('pgp', 'payload.json'))).toBe(true);
    expect(r.value.validUntil?.toISOString()).toBe('2030-01-02T00:00:00.000Z');
    const later = await verifyPgpAttachedMessage(parsed.value.key, message, new Date(SIGNED_AT.getTime() + 2 * DAY));
    expect(later.ok).toBe(false);
    if (!later.ok) {
      expect(later.error.code).toBe('BAD_SIGNATURE');
      expect(later.error.message).toMatch(/expired/i);
    }
  });

  it('keeps a signature made while the key was valid after the key expires (as gpg --verify does), with no end', async () => {
    const signer = gpgSigner('1d', SIGNED_AT);
    const parsed = await parsePgpPublicKey(signer.publicKey);
    if (!parsed.ok) throw new Error(parsed.error.message);
    const later = await verifyPgpAttachedMessage(parsed.value.key, signer.sign(readFixture('pgp', 'payload.json')), new Date(SIGNED_AT.getTime() + 3 * DAY));
    expect(later.ok).toBe(true);
    expect(later.ok && later.value.validUntil).toBeUndefined();
  });

  it('gives no end for a signature that does not expire', async () => {
    const r = await verifyPgpAttachedMessage(await key('signer'), text('payload.json.asc'), NOW);
    expect(r.ok && r.value.validUntil).toBeUndefined();
  });
});
