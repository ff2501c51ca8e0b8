import type { Command } from 'commander';
import { CliExit, EXIT } from '../exit-codes.js';
import { readText } from '../files.js';

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('work with Binary Authorization policies');
  policy
    .command('validate')
    .description('check a policy file (YAML or JSON, camelCase or snake_case); exit 0 when valid, 1 with every problem otherwise')
    .argument('<file>', 'policy file, or - for standard input')
    .option('--format <format>', 'text or json', 'text')
    .action(async (file: string, opts: { format: string }) => {
      const format = outputFormat(opts.format);
      const text = file === '-' ? await readStdin() : await readText(file, 'policy file');
      // Imported on use: parse-text.js loads the yaml library, which `tollgate serve` (the same
      // entry point) should not load.
      const { parsePolicyText } = await import('../../core/policy/parse-text.js');
      const r = parsePolicyText(text);
      if (format === 'json') {
        process.stdout.write(`${JSON.stringify(r.ok ? { valid: true, problems: [] } : { valid: false, problems: r.error }, null, 2)}\n`);
      } else if (r.ok) {
        process.stdout.write(`${file}: valid policy\n`);
      } else {
        process.stdout.write(`${file}: ${r.error.length} problem${r.error.length === 1 ? '' : 's'}\n${r.error.map((p) => `  ${p.message}`).join('\n')}\n`);
      }
      if (!r.ok) process.exitCode = EXIT.DENIED;
    });
}

export function outputFormat(value: string): 'text' | 'json' {
  if (value === 'text' || value === 'json') return value;
  throw new CliExit(EXIT.USAGE, `--format must be text or json, not ${value}`);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
