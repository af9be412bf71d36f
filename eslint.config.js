// Type-aware lint: floating promises and misused async are the bugs a server like this dies of.
import { readdirSync } from "node:fs";
import js from "@eslint/js";
import tseslint from "typescript-eslint";

// The feature modules (folders of src/modules), each after every module it imports. A module may
// import only the ones before it, so no two can ever import each other, even through others. A
// folder not listed comes last: a new feature may import every module, and none imports it until
// it takes its place here.
const MODULE_ORDER = [
  "user",
  "activity",
  "notification",
  "preferences",
  "email",
  "follow",
  "post",
  "reminder",
  "security",
  "recovery",
];
const moduleFolders = readdirSync(`${import.meta.dirname}/src/modules`, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && !MODULE_ORDER.includes(entry.name))
  .map((entry) => entry.name)
  .sort();
const moduleOrder = [...MODULE_ORDER, ...moduleFolders];
const moduleLayers = moduleOrder.map((name, i) => ({
  files: [`src/modules/${name}/**/*.ts`],
  rules: {
    "no-restricted-imports": [
      "error",
      {
        patterns: moduleOrder.slice(i + 1).map((later) => ({
          group: [`../${later}/*`],
          message: `${name} comes before ${later} in MODULE_ORDER (eslint.config.js): declare the interface you need in ${name}, or move the code`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  {
    ignores: [
      "dist/",
      "node_modules/",
      ".tools/",
      ".data/",
      "test/generated/",
      "examples/web/dist/",
      "examples/web/node_modules/",
      "examples/web/src/generated/",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        // node:test runs what describe/it return; awaiting them is not how the runner is used.
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["describe", "it", "test", "suite"] },
          ],
        },
      ],
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-unsafe-function-type": "off",
      "no-console": ["error", { allow: ["error"] }],
    },
  },
  {
    files: ["test/**/*.ts", "dev/**/*.ts"],
    rules: { "no-console": "off" },
  },
  ...moduleLayers,
  // Plain scripts outside the TypeScript project (build helpers run by Node directly).
  { files: ["eslint.config.js", "tools/**/*.mjs"], ...tseslint.configs.disableTypeChecked },
);
