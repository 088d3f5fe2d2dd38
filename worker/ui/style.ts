/** The live pages' style sheet, inlined into each page under its nonce (pages.ts). */
export const PAGE_STYLE = `
  :root { color-scheme: light dark; --muted: #7a7a85; --line: #8884; --held: #2f7d4f; --lost: #b3412f; --wait: #b7861b; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
  header { padding: 0.5rem 1rem; border-bottom: 1px solid var(--line); justify-content: space-between; }
  main { padding: 0 1rem 2rem; max-width: 60rem; margin: 0 auto; }
  h1 { font-size: 1.3rem; margin: 1rem 0 0.5rem; overflow-wrap: anywhere; }
  h2 { font-size: 1rem; margin: 1.25rem 0 0.4rem; }
  a { color: inherit; }
  .row { display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: center; }
  input { font: inherit; padding: 0.35rem 0.5rem; min-width: 0; flex: 1 1 12rem; }
  button { font: inherit; padding: 0.35rem 0.7rem; }
  .status { color: var(--muted); margin: 0.5rem 0; }
  .status.live { color: var(--held); }
  .status.error { color: var(--lost); }
  table { border-collapse: collapse; width: 100%; display: block; overflow-x: auto; }
  th, td { text-align: left; padding: 0.3rem 0.6rem 0.3rem 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { font-weight: 600; color: var(--muted); }
  td.empty { color: var(--muted); font-style: italic; }
  .countdown { font-variant-numeric: tabular-nums; }
  .bar { height: 4px; background: var(--line); margin-top: 2px; }
  .bar > span { display: block; height: 100%; background: var(--held); }
  #summary { display: flex; flex-wrap: wrap; gap: 0.4rem 1.5rem; margin: 0.5rem 0; }
  #summary b { font-variant-numeric: tabular-nums; }
  #events { list-style: none; padding: 0; margin: 0; font-size: 0.92rem; }
  #events li { padding: 0.25rem 0; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
  #events time { color: var(--muted); font-variant-numeric: tabular-nums; margin-right: 0.5rem; }
  .kind { font-weight: 600; }
  .kind-granted { color: var(--held); }
  .kind-expired, .kind-forced, .kind-session_closed { color: var(--lost); }
  .kind-timed_out, .kind-cancelled { color: var(--wait); }
  #timeline svg { width: 100%; height: auto; display: block; }
  #timeline .hold { fill: var(--held); }
  #timeline .hold.lost { fill: var(--lost); }
  #timeline .hold.open { fill: var(--held); opacity: 0.6; }
  #timeline text { font-size: 16px; fill: var(--muted); }
  #timeline line { stroke: var(--line); }
`;
