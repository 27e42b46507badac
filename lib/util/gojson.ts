// JSON as Go's encoding/json writes it, for output that tools written against
// Go programs (BuildKit, docker) parse byte for byte: "<", ">", "&", U+2028 and
// U+2029 inside strings are \u-escaped (json.Marshal's HTML-safe default), and
// times are time.Time's RFC 3339 with the fraction's trailing zeros dropped.
// Pure (no node: imports).

const HTML_UNSAFE = /[<>&\u2028\u2029]/g;

function escapeHtml(json: string): string {
  // These characters are never JSON syntax, so every one found is inside a string.
  return json.replace(HTML_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// json.Marshal: no whitespace. Key order is the object's, as a Go struct's is its fields'.
export function goMarshal(v: unknown): string {
  return escapeHtml(JSON.stringify(v));
}

// json.MarshalIndent(v, "", indent) (docker inspect uses four spaces).
export function goMarshalIndent(v: unknown, indent: string): string {
  return escapeHtml(JSON.stringify(v, null, indent));
}

// time.Time.MarshalJSON of a UTC time: 2024-05-01T10:20:30.123Z, 2024-05-01T10:20:30Z.
export function goTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d*?)0*Z$/, (_m, f: string) => (f ? `.${f}Z` : 'Z'));
}
