// The server's size limits (`GET /api/v1/limits`), read once per sign-in so
// pages refuse an oversized upload before it starts and name the limit. Until
// the answer is in, the server's defaults apply.
import { reactive } from 'vue'
import { get, type Schemas } from './client'

/** The limits in bytes (reactive). */
export const limits = reactive<Schemas['SizeLimits']>({
  plugin_upload_bytes: 64 << 20,
  sandbox_file_bytes: 256 << 20,
  task_input_bytes: 256 << 10,
})

let loaded: Promise<void> | null = null

/** Read the limits (once; again after a failure). */
export function loadLimits(): Promise<void> {
  loaded ??= get<Schemas['SizeLimits']>('/limits')
    .then((l) => void Object.assign(limits, l))
    .catch(() => {
      loaded = null
    })
  return loaded
}
