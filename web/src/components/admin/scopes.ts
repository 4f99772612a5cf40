// The API token scopes, as the server's `Scope` schema names them. The Record
// type makes the type-check fail when the schema gains or loses a scope, so
// the checkboxes never drift from what the server accepts.
import type { Schemas } from '../../api/client'

export type Scope = Schemas['Scope']

/** What each scope lets a token do, in the server's documentation order. */
export const SCOPES: Record<Scope, { label: string; help: string; adminOnly?: boolean }> = {
  read: { label: 'Read', help: 'Every GET: lists, details, history, audit entries you may see.' },
  'tools:call': { label: 'Call tools', help: 'Call plugin tools over REST and MCP (tools/call).' },
  sandboxes: { label: 'Sandboxes', help: 'Create, use and remove sandboxes (REST, terminals, MCP sandbox_* tools).' },
  tasks: { label: 'Tasks', help: 'Queue, follow and cancel tasks; change sessions, agents and schedules.' },
  'plugins:write': { label: 'Manage plugins', help: 'Install, configure and remove plugins.' },
  'tokens:write': { label: 'Manage tokens', help: 'Create and revoke API tokens (only with a subset of this token’s scopes).' },
  'users:write': { label: 'Manage users', help: 'Change users (administrators) or your own password.' },
  metrics: { label: 'Metrics', help: 'Scrape /metrics — the one to give Prometheus.', adminOnly: true },
}

/** Every scope, in order. */
export const SCOPE_NAMES = Object.keys(SCOPES) as Scope[]

/** The scopes an MCP client needs to use tools, tasks and sandboxes. */
export const MCP_SCOPES: Scope[] = ['read', 'tools:call', 'tasks', 'sandboxes']
