// Views of the parts of the plugin and tool answers that the OpenAPI document
// leaves as bare objects (`Record<string, never>`): the shapes below are those
// of the server's serializers (host/src/plugins/capabilities.rs, manifest.rs,
// tools/mod.rs, skills/mod.rs). The envelopes themselves stay `Schemas[...]`.
import type { Schemas } from '../../api/client'

/** Capabilities as requested, granted or pending (absent fields: none). */
export interface Caps {
  http?: string[]
  /** `true`: a space per user; `"shared"`: one space for every caller. */
  kv?: boolean | 'shared'
  secrets?: string[]
}

/** A configuration key the manifest declares. */
export interface ConfigKey {
  type?: 'string' | 'integer' | 'number' | 'boolean'
  description?: string
  default?: unknown
  required?: boolean
}

/** The installed manifest (plugin.toml as the server read it). */
export interface Manifest {
  name?: string
  version?: string
  description?: string
  kinds?: string[]
  component?: string
  license?: string
  authors?: string[]
  capabilities?: Caps
  limits?: { memory_mb?: number; timeout_ms?: number; fuel?: number }
  config?: Record<string, ConfigKey>
  mcp?: { bare_names?: boolean }
}

/** A JSON Schema (loosely: any keyword may appear). */
export type JsonSchema = Record<string, unknown>

/** A tool with its schemas. */
export type Tool = Omit<Schemas['ToolEntry'], 'input_schema' | 'output_schema'> & {
  input_schema: JsonSchema
  output_schema?: JsonSchema
}

/** A skill's catalog entry. */
export type Skill = Schemas['Skill']

/** A file of a skill: UTF-8 text, or base64 for binary content. */
export interface SkillFile {
  path: string
  text?: string
  base64?: string
}

/** A content block of a tool result. */
export interface Block {
  type: string
  text?: string
  json?: unknown
  mime?: string
  data?: string
  uri?: string
  [key: string]: unknown
}

export type Summary = Schemas['PluginSummary']
export type Detail = Schemas['PluginDetail']

/** The typed views of a plugin detail's object fields. */
export function view(d: Detail) {
  return {
    manifest: d.manifest as unknown as Manifest,
    requested: d.requested as unknown as Caps,
    granted: d.granted as unknown as Caps,
    pending: d.pending as unknown as Caps,
    tools: d.tool_list as unknown as Tool[],
    skills: d.skill_list as unknown as Skill[],
  }
}

/** Whether nothing is in these capabilities. */
export function noCaps(c: Caps | undefined): boolean {
  return !c || (!c.http?.length && !c.kv && !c.secrets?.length)
}
