// Facts about skills shared by the list and the detail page.
import { seg } from '../../api/client'
import type { Skill } from '../plugins/types'

/** The page of a skill. */
export const skillPath = (s: { plugin: string; name: string }) => `/skills/${seg(s.plugin)}/${seg(s.name)}`

/** Where a skill comes from, in words. */
export function origin(s: Skill): string {
  if (s.source === 'installed') return `Installed by ${s.owner ?? s.plugin.replace(/^@/, '')}`
  if (s.plugin === '_local') return 'Skills directory on the server'
  if (s.source === 'export') return `Served by plugin ${s.plugin}`
  return `Shipped in plugin ${s.plugin}`
}

/** Whether the signed-in user may share, unshare or remove it. */
export function mayManage(s: Skill, me: string | undefined, admin: boolean): boolean {
  return s.source === 'installed' && (admin || (!!me && s.owner === me))
}

/** How a session names it: `NAME` for the first of that name, `SOURCE/NAME` exactly. */
export function reference(s: Skill, all: Skill[]): string {
  const first = all.find((x) => x.name === s.name)
  return first && first.plugin === s.plugin ? s.name : `${s.plugin}/${s.name}`
}
