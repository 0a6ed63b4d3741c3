/**
 * The packages whose published tarballs are tested: a workspace-relative folder and a probe script (in `probes/`)
 * that does what a user would do first. The probe runs inside the scratch project, asserts, and prints one JSON line.
 * Adding a package is one line here plus its probe.
 */
export const packedPackages: readonly { dir: string; probe: string }[] = [
  { dir: 'packages/core', probe: 'core.mjs' },
  { dir: 'apps/cli', probe: 'cli.mjs' },
];
