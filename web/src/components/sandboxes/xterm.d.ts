// The slice of @xterm/xterm 6.0.0's API the terminal uses. The installed
// package lacks its typings/ directory (package.json names
// typings/xterm.d.ts, which is not there), so this declares what we call.
// Remove this file once the package ships its own declarations again.
declare module '@xterm/xterm' {
  export interface IDisposable {
    dispose(): void
  }
  export type IEvent<T> = (listener: (arg: T) => unknown) => IDisposable
  export interface ITerminalAddon extends IDisposable {
    activate(terminal: Terminal): void
  }
  export interface ITheme {
    foreground?: string
    background?: string
    cursor?: string
    cursorAccent?: string
    selectionBackground?: string
    selectionForeground?: string
    selectionInactiveBackground?: string
    scrollbarSliderBackground?: string
    scrollbarSliderHoverBackground?: string
    scrollbarSliderActiveBackground?: string
    black?: string
    red?: string
    green?: string
    yellow?: string
    blue?: string
    magenta?: string
    cyan?: string
    white?: string
    brightBlack?: string
    brightRed?: string
    brightGreen?: string
    brightYellow?: string
    brightBlue?: string
    brightMagenta?: string
    brightCyan?: string
    brightWhite?: string
  }
  export interface ITerminalOptions {
    cursorBlink?: boolean
    disableStdin?: boolean
    fontFamily?: string
    fontSize?: number
    lineHeight?: number
    minimumContrastRatio?: number
    rightClickSelectsWord?: boolean
    screenReaderMode?: boolean
    scrollback?: number
    theme?: ITheme
  }
  export class Terminal implements IDisposable {
    constructor(options?: ITerminalOptions)
    readonly rows: number
    readonly cols: number
    readonly element: HTMLElement | undefined
    readonly textarea: HTMLTextAreaElement | undefined
    options: ITerminalOptions
    readonly onData: IEvent<string>
    readonly onBinary: IEvent<string>
    readonly onResize: IEvent<{ cols: number; rows: number }>
    open(parent: HTMLElement): void
    write(data: string | Uint8Array, callback?: () => void): void
    writeln(data: string | Uint8Array, callback?: () => void): void
    paste(data: string): void
    focus(): void
    blur(): void
    clear(): void
    reset(): void
    hasSelection(): boolean
    getSelection(): string
    clearSelection(): void
    selectAll(): void
    loadAddon(addon: ITerminalAddon): void
    attachCustomKeyEventHandler(handler: (event: KeyboardEvent) => boolean): void
    dispose(): void
  }
}
