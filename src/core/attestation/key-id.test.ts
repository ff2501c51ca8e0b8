import { describe, expect, it } from 'vitest';
import { isValidPkixKeyId, keyIdsMatch, kmsKeyVersionName } from './key-id.js';

const KV = 'projects/demo/locations/global/keyRings/ring/cryptoKeys/key/cryptoKeyVersions/1';

describe('keyIdsMatch', () => {
  const table: [string, string, boolean, string][] = [
    ['ni:///sha-256;abc', 'ni:///sha-256;abc', true, 'identical ni ids'],
    ['ni:///sha-256;abc', 'ni:///sha-256;abd', false, 'different ni ids'],
    ['ni:///sha-256;abc', 'NI:///sha-256;abc', false, 'no case folding'],
    ['08DFB3CA51CA92DF0504F1724191ED01C8D74E03', '08DFB3CA51CA92DF0504F1724191ED01C8D74E03', true, 'identical fingerprints'],
    ['08DFB3CA51CA92DF0504F1724191ED01C8D74E03', '08dfb3ca51ca92df0504f1724191ed01c8d74e03', false, 'fingerprint case differs'],
    ['08DFB3CA51CA92DF0504F1724191ED01C8D74E03', 'openpgp4fpr:08DFB3CA51CA92DF0504F1724191ED01C8D74E03', false, 'openpgp4fpr form is not the bare fingerprint'],
    [`//cloudkms.googleapis.com/v1/${KV}`, `//cloudkms.googleapis.com/v1/${KV}`, true, 'identical KMS ids'],
    [`//cloudkms.googleapis.com/v1/${KV}`, `//127.0.0.1:7420/v1/${KV}`, true, 'KMS ids through different hosts'],
    [`//localhost:8080/v1/${KV}`, `//cloudkms.googleapis.com/v1/${KV}`, true, 'KMS ids, other way round'],
    [`//cloudkms.googleapis.com/v1/${KV}`, `//127.0.0.1:7420/v1/${KV.replace(/1$/, '2')}`, false, 'different key versions'],
    [`//cloudkms.googleapis.com/v1/${KV}`, `//127.0.0.1:7420/v1/${KV.replace('/key/', '/other/')}`, false, 'different keys'],
    [`//cloudkms.googleapis.com/v1/${KV}`, `//127.0.0.1:7420/v2/${KV}`, false, 'not /v1/'],
    [`//cloudkms.googleapis.com/v1/${KV}`, `https://cloudkms.googleapis.com/v1/${KV}`, false, 'one side has a scheme'],
    [`//cloudkms.googleapis.com/v1/${KV}`, KV, true, 'a bare KMS resource name names the same version (seed 000 adds keys that way)'],
    [KV, `//127.0.0.1:7420/v1/${KV}`, true, 'bare name on the attestor, gcloud sign-and-create id on the signature'],
    [KV, KV.replace(/1$/, '2'), false, 'bare names of different versions'],
    [`projects/demo/other/${KV}`, `//h/v1/projects/demo/other/${KV}`, false, 'not a key version name'],
    [`//cloudkms.googleapis.com/v1/${KV}`, 'ni:///sha-256;abc', false, 'one side KMS, other not'],
    ['//a/v1/projects/p/other/x', '//b/v1/projects/p/other/x', false, 'non-KMS network paths must be exact'],
    [`//cloudkms.googleapis.com/v1/${KV}/extra`, `//127.0.0.1:7420/v1/${KV}/extra`, false, 'trailing segments are not KMS-style'],
    ['', '', true, 'empty equals empty (exact)'],
    ['a', '', false, 'empty differs'],
  ];
  for (const [a, b, expected, why] of table) {
    it(`${why}: ${expected}`, () => {
      expect(keyIdsMatch(a, b)).toBe(expected);
      expect(keyIdsMatch(b, a)).toBe(expected);
    });
  }

  it('extracts the host-independent key version name', () => {
    expect(kmsKeyVersionName(`//127.0.0.1:7420/v1/${KV}`)).toBe(KV);
    expect(kmsKeyVersionName(KV)).toBe(KV);
    expect(kmsKeyVersionName('projects/p/keys/1')).toBeUndefined();
  });
});

describe('isValidPkixKeyId', () => {
  it('accepts RFC 3986 URIs', () => {
    for (const id of [
      'ni:///sha-256;EwVxs8fNUAHq9FI2AMfh8WNIXVBuuTMeGtPH72U-I70',
      'https://example.com/keys/1',
      'urn:example:key:1',
      'mailto:security@example.com',
      'tollgate:key1',
      'x:',
      'http://[::1]:8080/k',
      'http://user:pw@host/k?x=1#frag',
      'a+b.c-d://host/%20path',
    ]) {
      expect(isValidPkixKeyId(id), id).toBe(true);
    }
  });

  it('accepts the //host/v1/… KMS form gcloud sends', () => {
    expect(isValidPkixKeyId(`//cloudkms.googleapis.com/v1/${KV}`)).toBe(true);
    expect(isValidPkixKeyId(`//127.0.0.1:7420/v1/${KV}`)).toBe(true);
  });

  it('accepts plain ids without a colon (Kritis\' StringOrURI rule; Google\'s tutorials use them)', () => {
    for (const id of ['key1', 'projects/demo/locations/us-central1/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1', 'build-key_1.v2']) {
      expect(isValidPkixKeyId(id), id).toBe(true);
    }
  });

  it('refuses ids that are neither URIs nor plain strings', () => {
    for (const id of [
      '',
      'my key',
      '1abc:def',
      ':nothing',
      'ni:///sha-256;with space',
      'http://host/%zz',
      'http://host/a#b#c',
      'http://host/<x>',
      '//host/other/path',
      '///v1/projects/p',
      'ni:///sha-256;abc\n',
      `ni:///${'a'.repeat(5000)}`,
    ]) {
      expect(isValidPkixKeyId(id), JSON.stringify(id)).toBe(false);
    }
  });
});
