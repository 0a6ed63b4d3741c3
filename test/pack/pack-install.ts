/**
 * Installs workspace packages the way users get them: `pnpm pack` each one plus its workspace dependency closure,
 * then `npm install` the tarballs into a scratch project outside the workspace. A missing `files` entry, a broken
 * `exports` map, or an import that only resolves inside the monorepo then fails in the probe, not after a release.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// Asynchronous, so that a test worker's event loop (and vitest's calls into it) runs during minutes of packing.
const run = promisify(execFile);

const workspaceRoot = fileURLToPath(new URL('../../', import.meta.url));

interface WorkspacePackage {
  name: string;
  dir: string;
  /** Names of the workspace packages it depends on at run time (`workspace:` specs). */
  workspaceDeps: string[];
}

/** Every package under the workspace globs of pnpm-workspace.yaml (`packages/*`, `apps/*`), by name. */
function workspacePackages(): Map<string, WorkspacePackage> {
  const found = new Map<string, WorkspacePackage>();
  for (const group of ['packages', 'apps']) {
    const groupDir = join(workspaceRoot, group);
    if (!existsSync(groupDir)) continue;
    for (const entry of readdirSync(groupDir)) {
      const manifestPath = join(groupDir, entry, 'package.json');
      if (!existsSync(manifestPath)) continue;
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { name: string; dependencies?: Record<string, string> };
      const workspaceDeps = Object.entries(manifest.dependencies ?? {})
        .filter(([, spec]) => spec.startsWith('workspace:'))
        .map(([name]) => name);
      found.set(manifest.name, { name: manifest.name, dir: join(groupDir, entry), workspaceDeps });
    }
  }
  return found;
}

/** The listed packages and every workspace package they depend on, transitively. */
function dependencyClosure(dirs: readonly string[], packages: Map<string, WorkspacePackage>): WorkspacePackage[] {
  const byDir = new Map([...packages.values()].map((p) => [p.dir, p]));
  const pending = dirs.map((d) => {
    const p = byDir.get(join(workspaceRoot, d));
    if (!p) throw new Error(`${d} is not a workspace package`);
    return p;
  });
  const closure = new Map<string, WorkspacePackage>();
  while (pending.length) {
    const p = pending.pop()!;
    if (closure.has(p.name)) continue;
    closure.set(p.name, p);
    for (const dep of p.workspaceDeps) pending.push(packages.get(dep)!);
  }
  return [...closure.values()];
}

/** `pnpm pack` (which rewrites `workspace:` specs to versions) into `destination`; returns the tarball's path. */
async function pack(dir: string, destination: string): Promise<string> {
  const before = new Set(readdirSync(destination));
  await run('pnpm', ['pack', '--pack-destination', destination], { cwd: dir });
  const created = readdirSync(destination).filter((f) => !before.has(f) && f.endsWith('.tgz'));
  if (created.length !== 1) throw new Error(`pnpm pack in ${dir} made ${created.length} tarballs`);
  return join(destination, created[0]);
}

/**
 * Packs `dirs` (workspace-relative) with their dependency closure and installs them into a fresh scratch project.
 * Workspace dependencies are pinned to their tarballs with npm `overrides`, since they are not on the registry.
 */
export async function installPacked(dirs: readonly string[]): Promise<{ scratch: string; tarballs: Record<string, string> }> {
  const scratch = mkdtempSync(join(tmpdir(), 'bvllm-pack-'));
  const tarballDir = join(scratch, 'tarballs');
  const project = join(scratch, 'project');
  mkdirSync(tarballDir);
  mkdirSync(project);
  const tarballs: Record<string, string> = {};
  for (const p of dependencyClosure(dirs, workspacePackages())) tarballs[p.name] = await pack(p.dir, tarballDir);
  const specs = Object.fromEntries(Object.entries(tarballs).map(([name, path]) => [name, `file:${path}`]));
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'bvllm-pack-scratch', private: true, type: 'module', dependencies: specs, overrides: specs }, null, 2),
  );
  // onnxruntime-node's install script fetches its CUDA provider from NuGet unless told to skip; the CPU binaries we
  // run ship in its tarball, and the build machine reaches only the npm registry.
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: project, env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } });
  return { scratch: project, tarballs };
}
