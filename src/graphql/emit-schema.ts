import { readFile, writeFile } from "node:fs/promises";
import { printHeraldSchema } from "./schema.js";

/**
 * `node dist/src/graphql/emit-schema.js <file>` writes the SDL; with `--check` it exits 1 when the
 * file differs from what the code describes (CI's drift check).
 */
async function main(argv: string[]): Promise<number> {
  const check = argv.includes("--check");
  const file = argv.find((a) => !a.startsWith("--")) ?? "schema/schema.graphql";
  const sdl = await printHeraldSchema();
  if (!check) {
    await writeFile(file, sdl);
    return 0;
  }
  const current = await readFile(file, "utf8").catch(() => "");
  if (current === sdl) return 0;
  console.error(`${file} is out of date with the code: run \`npm run schema\` and commit the result.`);
  return 1;
}

process.exitCode = await main(process.argv.slice(2));
