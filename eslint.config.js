// Lint: typescript-eslint recommended, plus the layer rule of DESIGN.md: imports point down only.
import tseslint from "typescript-eslint";

// Each layer may import itself and the layers listed here (and nothing above it).
const layers = {
  core: [],
  backend: ["core"],
  formats: ["core"],
  tokenizers: ["core"],
  hub: ["core", "formats"],
  tensor: ["core", "backend"],
  nn: ["core", "backend", "tensor"],
  optim: ["core", "backend", "tensor", "nn"],
  data: ["core", "backend", "tensor", "formats", "tokenizers"],
  report: ["core"],
  quant: ["core", "backend", "tensor", "nn", "formats"],
  models: ["core", "backend", "tensor", "nn", "formats", "tokenizers", "quant"],
  peft: ["core", "backend", "tensor", "nn", "formats", "models", "quant"],
  generation: ["core", "backend", "tensor", "nn", "models", "tokenizers", "peft"],
  train: ["core", "backend", "tensor", "nn", "optim", "data", "formats", "models", "peft", "report", "tokenizers", "generation"],
  serve: ["core", "backend", "tensor", "models", "tokenizers", "generation", "peft"],
  export: ["core", "backend", "tensor", "nn", "formats", "tokenizers", "quant", "models", "peft"],
};
// examples/ and cli/ sit on top and may import any layer.
const all = Object.keys(layers);

const layerRules = Object.entries(layers).map(([layer, allowed]) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: {
    "no-restricted-imports": [
      "error",
      {
        patterns: all
          .filter((l) => l !== layer && !allowed.includes(l))
          .map((l) => ({
            group: [`**/${l}/*`, `**/${l}/index.ts`, `../${l}`, `../../${l}`],
            message: `src/${layer} may not import src/${l} (DESIGN.md layers: imports point down only).`,
          })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ["dist/**", "build/**", "node_modules/**"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  ...layerRules,
);
