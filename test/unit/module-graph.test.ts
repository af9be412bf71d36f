import assert from "node:assert/strict";
import { globSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { projectRoot } from "../../dev/local-stack.js";

/** Which feature modules (folders of src/modules) each one imports, type-only imports included. */
function moduleGraph(): Map<string, Set<string>> {
  const root = path.join(projectRoot(), "src/modules");
  const graph = new Map<string, Set<string>>();
  for (const file of globSync("*/*.ts", { cwd: root })) {
    const from = file.split(path.sep)[0] ?? "";
    const imports = graph.get(from) ?? new Set<string>();
    graph.set(from, imports);
    for (const match of readFileSync(path.join(root, file), "utf8").matchAll(/from "\.\.\/([a-z-]+)\//g)) {
      if (match[1] && match[1] !== from) imports.add(match[1]);
    }
  }
  return graph;
}

/** Every cycle, each as the modules along it from its smallest name. */
function cycles(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const found = new Map<string, string[]>();
  const walk = (start: string, at: string, trail: string[]) => {
    for (const next of graph.get(at) ?? []) {
      if (next === start) {
        const smallest = trail.indexOf([...trail].sort()[0] ?? "");
        const cycle = [...trail.slice(smallest), ...trail.slice(0, smallest)];
        found.set(cycle.join(" -> "), cycle);
      } else if (!trail.includes(next)) walk(start, next, [...trail, next]);
    }
  };
  for (const start of graph.keys()) walk(start, start, [start]);
  return [...found.values()];
}

describe("feature modules", () => {
  it("import one another without a cycle", () => {
    const graph = moduleGraph();
    assert.ok(graph.size >= 5, "the modules were found");
    assert.deepEqual(
      cycles(graph).map((c) => c.join(" -> ")),
      [],
      "a module that needs another's interface declares it itself (see EmailOutbox, DeliveryPlan)",
    );
  });

  it("finds a cycle when there is one", () => {
    const graph = new Map([
      ["a", new Set(["b"])],
      ["b", new Set(["c"])],
      ["c", new Set(["a"])],
      ["d", new Set(["a"])],
    ]);
    assert.deepEqual(cycles(graph), [["a", "b", "c"]]);
  });
});
