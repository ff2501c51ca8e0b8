import type { Command } from 'commander';
import { CliExit, EXIT } from '../exit-codes.js';
import { clientSettings, createClient, formatTable, printJson, withClientOptions, type ClientFlags } from '../client.js';

interface ProjectView {
  projectId: string;
  projectNumber: string;
  createTime: string;
  binaryAuthorizationServiceAgent: string;
}

export function registerProjects(program: Command): void {
  const projects = program.command('projects').description('manage projects (a project also comes into being when an admin first writes to it)');
  withClientOptions(projects.command('create').description('create a project').argument('<project-id>'))
    .action(async (projectId: string, flags: ClientFlags) => {
      const settings = clientSettings(flags);
      const p = await createClient(settings).request<ProjectView>('POST', '/tollgate/v1/projects', { projectId });
      if (settings.format === 'json') printJson(p);
      else process.stdout.write(`Created project ${p.projectId} (number ${p.projectNumber}); Binary Authorization service agent ${p.binaryAuthorizationServiceAgent}\n`);
    });
  withClientOptions(projects.command('list').description('list projects'))
    .action(async (flags: ClientFlags) => {
      const settings = clientSettings(flags);
      const r = await createClient(settings).request<{ projects?: ProjectView[] }>('GET', '/tollgate/v1/projects?pageSize=1000');
      const list = r.projects ?? [];
      if (settings.format === 'json') printJson(list);
      else process.stdout.write(formatTable(['PROJECT_ID', 'PROJECT_NUMBER', 'CREATED'], list.map((p) => [p.projectId, p.projectNumber, p.createTime])));
    });
  withClientOptions(
    projects
      .command('update')
      .description('change a project\'s Tollgate settings')
      .argument('<project-id>')
      .option('--require-run-binary-authorization [bool]', 'refuse Cloud Run-style services without the binary-authorization annotation (seed 002\'s org policy); =false turns it off'),
  ).action(async (projectId: string, flags: ClientFlags & { requireRunBinaryAuthorization?: boolean | string }) => {
    const settings = clientSettings(flags);
    const v = flags.requireRunBinaryAuthorization;
    if (v === undefined) throw new CliExit(EXIT.USAGE, 'nothing to update: give --require-run-binary-authorization[=true|false]');
    if (v !== true && v !== 'true' && v !== 'false') throw new CliExit(EXIT.USAGE, '--require-run-binary-authorization takes true or false');
    const r = await createClient(settings).request<Record<string, unknown>>('PATCH', `/tollgate/v1/projects/${encodeURIComponent(projectId)}/runSettings`, { requireRunBinaryAuthorization: v === true || v === 'true' });
    if (settings.format === 'json') printJson(r);
    else process.stdout.write(`Updated project ${projectId}: requireRunBinaryAuthorization=${String(r['requireRunBinaryAuthorization'])}\n`);
  });
  for (const c of projects.commands) c.exitOverride();
}
