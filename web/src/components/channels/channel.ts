// Shared bits of the channel pages: the webhook URL, what a plugin's
// manifest declares, and short setup notes for the bundled plugins.
import type { Schemas } from '../../api/client'

/** The absolute URL providers post to. */
export function webhookUrl(c: Pick<Schemas['Channel'], 'webhook_path'>): string {
  return `${location.origin}${c.webhook_path}`
}

/** The path an instance will get, before it exists. */
export function webhookPathFor(plugin: string, name: string): string {
  return !name || name === 'default'
    ? `/api/v1/channels/${encodeURIComponent(plugin)}/webhook`
    : `/api/v1/channels/${encodeURIComponent(plugin)}/${encodeURIComponent(name)}/webhook`
}

/** One configuration key a plugin declares. */
export interface ConfigKey {
  key: string
  description: string
  default: string
  required: boolean
}

/** What a channel plugin's manifest declares: configuration keys and secrets. */
export function declared(detail: Schemas['PluginDetail'] | null): { config: ConfigKey[]; secrets: string[] } {
  if (!detail) return { config: [], secrets: [] }
  const m = detail.manifest as unknown as {
    config?: Record<string, { description?: string; default?: unknown; required?: boolean }>
    capabilities?: { secrets?: string[] }
  }
  const config = Object.entries(m.config ?? {}).map(([key, v]) => ({
    key,
    description: v?.description ?? '',
    default: v?.default === undefined || v?.default === null ? '' : String(v.default),
    required: v?.required === true,
  }))
  return { config, secrets: m.capabilities?.secrets ?? [] }
}

/** How to point a provider at an instance, for the plugins switchyard ships. */
export function setupNote(plugin: string): string {
  switch (plugin) {
    case 'github':
      return 'In the repository (or organisation) settings, add a webhook with this Payload URL, content type application/json, the same secret as webhook_secret, and the events “Issue comments” and “Pull request review comments”. Comments that mention the trigger start a task; the result is posted back as a comment.'
    case 'slack':
      return 'In your Slack app, turn on Event Subscriptions with this Request URL and subscribe to app_mention and message.im. Set signing_secret (Basic Information → Signing Secret) and bot_token (OAuth → Bot User OAuth Token). Replies go in the thread.'
    case 'webhook':
      return 'POST JSON {"conversation", "text", "id"?, "sender"?, "reply_to"?} to this URL with the header X-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with signing_secret>. Results are POSTed to callback_url, signed the same way (or only kept on the task when it is empty).'
    default:
      return 'Give the provider this URL; the plugin checks each request’s signature with its secrets.'
  }
}

/** Whether a delivery is still moving (so the page polls faster). */
export function moving(d: Schemas['Delivery']): boolean {
  return d.state === 'waiting' || d.state === 'sending' || d.state === 'retry' || d.state === 'unknown'
}
