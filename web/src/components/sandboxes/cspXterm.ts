// Opening xterm.js 6 under the console's CSP (`style-src 'self'`, no
// 'unsafe-inline').
//
// What xterm 6.0.0 does (read in node_modules/@xterm/xterm/src): whatever the
// renderer, `term.open()` creates three <style> elements and fills them with
// `textContent`: Viewport.ts (scrollbar slider colours) and, in the DOM
// renderer (the only renderer built into v6; canvas is gone, WebGL is an
// addon that still creates the Viewport one), DomRenderer.ts's
// `_dimensionsStyleElement` and `_themeStyleElement` (row layout, font, the
// 256-colour palette, cursor, selection: ~55 KB). The CSP blocks all three
// (even empty: Chromium reports style-src-elem for an empty inline <style>),
// so the screen loses its colours and layout and every violation is reported.
// There is no option that turns them off. It also writes truecolour
// (`\e[38;2;R;G;Bm`) and minimum-contrast colours with
// `setAttribute('style', …)` (DomRendererRowFactory._addStyle), which the CSP
// blocks as style-src-attr.
//
// What the CSP does allow is CSSOM: constructed stylesheets adopted by the
// document, and `element.style` / `style.cssText`. So, only while
// `term.open()` runs (all three elements are created synchronously inside it),
// `document.createElement('style')` hands xterm an inert <template> whose
// `textContent` setter feeds a constructed CSSStyleSheet in
// `document.adoptedStyleSheets`, and whose `remove()` (xterm calls it on
// dispose) drops the sheet. Later theme or font changes keep writing
// `textContent` to the same stand-ins. The row factory's `_addStyle` is
// replaced with a CSSOM equivalent. Checked in Chromium under this exact CSP:
// no violation, palette/truecolour/cursor applied, sheets gone after dispose.
import type { Terminal } from '@xterm/xterm'

type Create = Document['createElement']

interface RowFactory {
  _addStyle?: (el: HTMLElement, style: string) => void
}
interface Internals {
  _core?: { _renderService?: { _renderer?: { value?: { _rowFactory?: RowFactory } } } }
}

/** Open `term` in `parent` without inline <style> elements; returns a cleanup for the sheets. */
export function openCspSafe(term: Terminal, parent: HTMLElement): () => void {
  const doc = parent.ownerDocument
  const sheets: CSSStyleSheet[] = []
  const hadOwn = Object.prototype.hasOwnProperty.call(doc, 'createElement')
  const original: Create = doc.createElement
  const replacement = function (this: Document, tag: string, options?: ElementCreationOptions): HTMLElement {
    if (String(tag).toLowerCase() !== 'style') return original.call(this, tag, options)
    const stand = original.call(this, 'template')
    stand.dataset.xtermStyle = ''
    const sheet = new CSSStyleSheet()
    sheets.push(sheet)
    let text = ''
    Object.defineProperty(stand, 'textContent', {
      configurable: true,
      get: () => text,
      set: (v: unknown) => {
        text = v == null ? '' : String(v)
        sheet.replaceSync(text)
      },
    })
    const detach = stand.remove.bind(stand)
    stand.remove = () => {
      doc.adoptedStyleSheets = doc.adoptedStyleSheets.filter((s) => s !== sheet)
      detach()
    }
    doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet]
    return stand
  }
  ;(doc as { createElement: unknown }).createElement = replacement
  try {
    term.open(parent)
  } finally {
    if (hadOwn) doc.createElement = original
    else delete (doc as { createElement?: unknown }).createElement
  }
  const rows = (term as unknown as Internals)._core?._renderService?._renderer?.value?._rowFactory
  if (rows && typeof rows._addStyle === 'function') {
    rows._addStyle = (el, style) => {
      el.style.cssText = `${el.style.cssText}${style};`
    }
  }
  return () => {
    doc.adoptedStyleSheets = doc.adoptedStyleSheets.filter((s) => !sheets.includes(s))
  }
}
