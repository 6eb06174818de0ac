/** Waits keep the JSON schema of the input they expect; these describe it in a line. */

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  description?: string;
}

export interface SchemaField {
  readonly name: string;
  readonly type: string;
  readonly required: boolean;
  readonly description?: string;
}

function asSchema(value: unknown): JsonSchema | undefined {
  return typeof value === 'object' && value !== null ? value : undefined;
}

/** The top-level fields of an object schema; empty for anything else. */
export function schemaFields(schema: unknown): SchemaField[] {
  const s = asSchema(schema);
  if (!s?.properties) return [];
  const required = new Set(s.required ?? []);
  return Object.entries(s.properties).map(([name, prop]) => ({
    name,
    type: typeName(prop),
    required: required.has(name),
    ...(typeof prop.description === 'string' ? { description: prop.description } : {}),
  }));
}

/** `approved: boolean, by: string, comment?: string`, or the type of a non-object schema. */
export function describeSchema(schema: unknown): string {
  const s = asSchema(schema);
  if (!s) return 'any';
  const fields = schemaFields(s);
  if (fields.length === 0) return typeName(s);
  return fields.map((f) => `${f.name}${f.required ? '' : '?'}: ${f.type}`).join(', ');
}

function typeName(schema: JsonSchema | undefined, depth = 0): string {
  if (!schema) return 'any';
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  const union = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(union)) return union.map((u) => typeName(u, depth)).join(' | ');
  const type = Array.isArray(schema.type) ? schema.type.join(' | ') : schema.type;
  if (type === 'array') return `${typeName(schema.items, depth + 1)}[]`;
  if (type === 'object' || schema.properties) {
    if (depth > 0 || !schema.properties) return '{…}';
    return `{ ${describeSchema(schema)} }`;
  }
  if (type === 'integer') return 'integer';
  return type ?? 'any';
}
