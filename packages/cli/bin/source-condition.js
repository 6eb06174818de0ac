// A module resolve hook: resolves the workspace packages to their TypeScript sources
// (the `@cairn/source` export condition), as `node --conditions=@cairn/source` would.
export async function resolve(specifier, context, nextResolve) {
  const conditions = context.conditions.includes('@cairn/source')
    ? context.conditions
    : ['@cairn/source', ...context.conditions];
  return nextResolve(specifier, { ...context, conditions });
}
