// ESLint with typescript-eslint: rules that catch real bugs (promises nobody
// awaits, promises where a callback's result is ignored, unused code, throwing
// non-errors), run with type information from the project's tsconfigs.
// `npm run lint` checks; `npm run lint -- --fix` fixes what can be fixed safely.
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

const unusedVars = ['error', { args: 'after-used', argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }]

/** Rules that need types: the bugs a compiler does not report. */
const typeAware = {
  '@typescript-eslint/no-floating-promises': 'error',
  '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
  '@typescript-eslint/await-thenable': 'error',
  '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
  // Only where it changes behaviour: a promise returned without await from a try block escapes its catch.
  '@typescript-eslint/return-await': ['error', 'error-handling-correctness-only'],
  '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }]
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: {
      globals: globals.node,
      // Types from the tsconfig.json nearest to each file.
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    rules: {
      ...typeAware,
      '@typescript-eslint/no-unused-vars': unusedVars,
      'no-empty': ['error', { allowEmptyCatch: true }],
      eqeqeq: ['error', 'smart']
    }
  },
  {
    files: ['dashboard/**/*.js'],
    // The TypeScript parser and plugin, for the type-aware rules; no TypeScript-only rules.
    extends: [js.configs.recommended, tseslint.configs.base],
    languageOptions: {
      globals: globals.browser,
      sourceType: 'module',
      // Types from dashboard/tsconfig.json (JSDoc, checked by `npm run typecheck`).
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    rules: {
      ...typeAware,
      'no-unused-vars': unusedVars,
      'no-empty': ['error', { allowEmptyCatch: true }],
      eqeqeq: ['error', 'smart']
    }
  },
  {
    files: ['bin/**/*.js', 'scripts/**/*.js', 'eslint.config.js'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node, sourceType: 'module' }
  }
)
