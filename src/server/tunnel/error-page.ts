/**
 * The HTML pages the tunnel's HTTP port answers with when it cannot reach a device's
 * service: 400 bad Host, 404 unknown name, 502 the device's service refused, 503 the
 * device is offline, 504 the device did not answer in time.
 *
 * @module
 */

/** Status codes with a page of their own. */
export type TunnelErrorStatus = 400 | 404 | 502 | 503 | 504

const TITLES: Record<TunnelErrorStatus, string> = {
  400: 'Bad request',
  404: 'No such tunnel',
  502: 'The device’s service is not answering',
  503: 'The device is offline',
  504: 'The device did not answer in time',
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** A complete HTML page for `status`, explaining `detail` (plain text, escaped here). */
export function tunnelErrorPage(status: TunnelErrorStatus, detail: string): string {
  const title = TITLES[status]
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${status} ${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.5rem}p{line-height:1.5}small{color:#777}</style>
</head>
<body>
<h1>${status} — ${escapeHtml(title)}</h1>
<p>${escapeHtml(detail)}</p>
<p><small>peerlink tunnel</small></p>
</body>
</html>
`
}
