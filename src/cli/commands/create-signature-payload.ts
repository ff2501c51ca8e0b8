import type { Command } from 'commander';
import { createSignaturePayload } from '../../core/attestation/payload.js';
import { CliExit, EXIT } from '../exit-codes.js';

export function registerCreateSignaturePayload(program: Command): void {
  program
    .command('create-signature-payload')
    .description('print the signature payload for an image digest, byte for byte as gcloud makes it')
    .requiredOption('--artifact-url <url>', 'REGISTRY/PATH@sha256:DIGEST of the image to sign')
    .action((opts: { artifactUrl: string }) => {
      const r = createSignaturePayload(opts.artifactUrl);
      if (!r.ok) throw new CliExit(EXIT.USAGE, r.error.message);
      process.stdout.write(r.value);
    });
}
