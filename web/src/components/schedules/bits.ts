// Small shared pieces of the schedule pages.
import type { Schemas } from '../../api/client'

/** The badge class of a schedule's state. */
export function stateTone(state: string): string {
  return state === 'active' ? 'ok' : state === 'paused' ? 'warn' : 'info'
}

/** The badge class of a run's state. */
export function runTone(state: string): string {
  switch (state) {
    case 'started':
      return 'ok'
    case 'failed':
      return 'bad'
    case 'skipped':
    case 'missed':
    case 'buffered':
      return 'warn'
    default:
      return 'info'
  }
}

/** What a scheduled task does, in one line. */
export function taskText(t: Schemas['ScheduledTask']): string {
  const input = t.input as { content?: string; command?: string }
  return t.kind === 'exec' ? (input.command ?? '') : (input.content ?? '')
}
