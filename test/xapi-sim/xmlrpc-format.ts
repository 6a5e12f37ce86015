/**
 * XAPI-simulator side: prints a value the way XAPI stores task results (an XML-RPC `<value>`
 * string, xapi.md §4). Strings are bare `<value>text</value>`, as XAPI prints references.
 */
export type SimValue =
  | string
  | number
  | boolean
  | null
  | undefined
  | readonly SimValue[]
  | { readonly [key: string]: SimValue };

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function formatXmlRpcValue(value: SimValue): string {
  if (value === null || value === undefined) return '<value><nil/></value>';
  if (typeof value === 'string') return `<value>${escape(value)}</value>`;
  if (typeof value === 'boolean') return `<value><boolean>${value ? 1 : 0}</boolean></value>`;
  if (typeof value === 'number') {
    return Number.isInteger(value)
      ? `<value><int>${value}</int></value>`
      : `<value><double>${value}</double></value>`;
  }
  if (Array.isArray(value)) {
    return `<value><array><data>${value.map((item: SimValue) => formatXmlRpcValue(item)).join('')}</data></array></value>`;
  }
  const members = Object.entries(value as Record<string, SimValue>)
    .map(([key, item]) => `<member><name>${escape(key)}</name>${formatXmlRpcValue(item)}</member>`)
    .join('');
  return `<value><struct>${members}</struct></value>`;
}

/** A task result: "" for void, else the XML-RPC form. */
export function formatTaskResult(value: SimValue): string {
  return value === undefined || value === '' ? '' : formatXmlRpcValue(value);
}
