// The auditlake dashboard: a few pages over the public JSON API (/api/v1/...). No framework,
// no build step, nothing fetched from elsewhere. Every figure comes from the server as the API
// gives it; this file only lays it out.
'use strict';

const T = {
  en: {
    overview: 'Overview', alerts: 'Alerts', sql: 'SQL console', audit: 'Audit', logout: 'Sign out',
    signin: 'Sign in', account: 'Account', password: 'Password', this_month: 'This month',
    last_month: 'Last month', custom: 'Custom', apply: 'Apply', the_sql: 'The SQL that computes it',
    run: 'Run', download_csv: 'Download CSV', download_parquet: 'Download Parquet', tables: 'Tables and columns', filter_account: 'Account', organisation: 'Whole organisation', all_mine: 'All my departments',
    rule: 'Rule', key: 'Key', severity: 'Severity', state: 'State', dept: 'Department', fired: 'Fired',
    summary: 'Summary', acked: 'Acknowledged by', acknowledge: 'Acknowledge', firing: 'firing',
    resolved: 'resolved', count_firing: 'Firing', count_resolved: 'Resolved', rows: 'rows',
    no_findings: 'No findings.', bad_login: 'Wrong account name or password.',
    throttled: 'Too many failed sign-ins; wait and try again.', vs: 'vs', field: 'Field', value: 'Value',
    silence: 'Silence', silences: 'Silences', deliveries: 'Deliveries', why: 'Why', matchers: 'Matchers',
    until: 'Until', by: 'By', comment: 'Comment', channel: 'Channel', attempts: 'Attempts',
    last_error: 'Last error', created: 'Created', sent: 'Sent', behaviour: 'Behaviour',
    heatmap: 'Module use by local hour', read_latency: 'Message read latency',
    calendar_by_dept: 'Calendar adoption by department', pending: 'Approvals pending',
    pending_count: 'pending at the end of the period', instance: 'Instance', submitter: 'Submitted by',
    process: 'Process', submitted: 'Submitted', age_hours: 'Age (h)', reports: 'Reports',
    generate: 'Generate', month: 'Month', generated: 'Generated', generating: 'Generating…',
    any_rule: 'Any rule', any_severity: 'Any severity', any_state: 'Firing or resolved',
    any_dept: 'Any department', evidence: 'Evidence', show_evidence: 'Evidence', ts: 'Time',
    fields: 'Fields', findings_shown: 'findings', my_history: 'My recent queries',
    any_path: 'Any path', any_outcome: 'Any outcome', sql_contains: 'SQL contains',
    open_now: 'open now', overdue_count: 'past 48 h',
  },
  zh: {
    overview: '總覽', alerts: '警報', sql: 'SQL 查詢', audit: '審計', logout: '登出',
    signin: '登入', account: '帳號', password: '密碼', this_month: '本月', last_month: '上月',
    custom: '自訂', apply: '套用', the_sql: '計算此指標的 SQL', run: '執行', download_csv: '下載 CSV', download_parquet: '下載 Parquet', tables: '資料表與欄位',
    filter_account: '帳號', organisation: '全機構', all_mine: '我的全部部門', rule: '規則', key: '鍵', severity: '嚴重程度',
    state: '狀態', dept: '部門', fired: '觸發時間', summary: '摘要', acked: '確認人',
    acknowledge: '確認', firing: '觸發中', resolved: '已解除', count_firing: '觸發中',
    count_resolved: '已解除', rows: '列', no_findings: '沒有警報。', bad_login: '帳號或密碼錯誤。',
    throttled: '登入失敗次數過多，請稍後再試。', vs: '對比', field: '欄位', value: '數值',
    silence: '靜音', silences: '靜音規則', deliveries: '通知發送', why: '原因', matchers: '條件',
    until: '直至', by: '建立者', comment: '備註', channel: '渠道', attempts: '嘗試次數',
    last_error: '最後錯誤', created: '建立時間', sent: '發送時間', behaviour: '行為洞察',
    heatmap: '各模組按本地時段使用', read_latency: '訊息閱讀延遲', calendar_by_dept: '各部門日程使用率',
    pending: '待審批', pending_count: '期末仍待審批', instance: '審批單', submitter: '提交人',
    process: '流程', submitted: '提交時間', age_hours: '已等待（小時）', reports: '報告',
    generate: '產生', month: '月份', generated: '產生時間', generating: '產生中…',
    any_rule: '所有規則', any_severity: '所有嚴重程度', any_state: '觸發中或已解除',
    any_dept: '所有部門', evidence: '證據', show_evidence: '證據', ts: '時間', fields: '欄位',
    findings_shown: '項警報', my_history: '我最近的查詢', any_path: '所有途徑',
    any_outcome: '所有結果', sql_contains: 'SQL 包含', open_now: '目前未完成', overdue_count: '超過 48 小時',
  },
};

const state = { me: null, lang: localStorage.getItem('auditlake.lang') || 'en', kpis: null };

const $ = (id) => document.getElementById(id);
const t = (k) => (T[state.lang] && T[state.lang][k]) || T.en[k] || k;
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of kids) e.append(c);
  return e;
};

async function api(method, path, body, accept) {
  const headers = { Accept: accept || 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && state.me) headers['X-CSRF-Token'] = state.me.csrf;
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401 && path !== '/api/v1/session') {
    state.me = null;
    show('login');
  }
  return r;
}

async function errorText(r) {
  try { return (await r.json()).error || r.statusText; } catch (_) { return r.statusText; }
}

function translate() {
  document.documentElement.lang = state.lang === 'zh' ? 'zh-Hant' : 'en';
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll('[data-i18n-placeholder]')) e.placeholder = t(e.dataset.i18nPlaceholder);
  $('lang').textContent = state.lang === 'zh' ? 'English' : '中文';
  const org = document.querySelector('#dept option[value=""]');
  if (org) org.textContent = t(state.kpis && !state.kpis.organisation ? 'all_mine' : 'organisation');
  if (state.kpis) renderTiles();
}

function show(page) {
  for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== 'page-' + page;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page);
  const signedIn = !!state.me;
  $('nav').hidden = !signedIn;
  $('logout').hidden = !signedIn;
  $('who').textContent = signedIn ? `${state.me.account} (${state.me.role})` : '';
  if (signedIn) {
    for (const a of document.querySelectorAll('#nav a[data-roles]')) {
      a.hidden = !a.dataset.roles.split(' ').includes(state.me.role);
    }
  }
}

function route() {
  if (!state.me) return show('login');
  const page = (location.hash || '#overview').slice(1);
  const allowed = document.querySelector(`#nav a[data-page="${page}"]`);
  const p = allowed && !allowed.hidden ? page : 'overview';
  show(p);
  if (p === 'overview') loadKpis();
  if (p === 'alerts') loadAlerts();
  if (p === 'behaviour') loadBehaviour();
  if (p === 'reports') loadReports();
  if (p === 'sql') { loadColumns(); loadHistory(); }
  if (p === 'audit') loadAudit();
}

// ---- overview ----------------------------------------------------------------------------

const iso = (d) => d.toISOString().slice(0, 10);

function periodFromKind() {
  const now = new Date();
  const y = now.getFullYear(), m = now.getMonth();
  const kind = $('period-kind').value;
  if (kind === 'this') return [iso(new Date(Date.UTC(y, m, 1))), iso(new Date(Date.UTC(y, m, now.getDate())))];
  if (kind === 'last') return [iso(new Date(Date.UTC(y, m - 1, 1))), iso(new Date(Date.UTC(y, m, 0)))];
  return [$('from').value, $('to').value];
}

async function loadKpis() {
  const [from, to] = periodFromKind();
  const q = new URLSearchParams();
  if (from && to) { q.set('from', from); q.set('to', to); }
  if ($('dept').value) q.set('dept', $('dept').value);
  $('overview-error').textContent = '';
  $('tiles').setAttribute('aria-busy', 'true');
  const r = await api('GET', '/api/v1/kpis?' + q);
  $('tiles').removeAttribute('aria-busy');
  if (!r.ok) { $('overview-error').textContent = await errorText(r); return; }
  state.kpis = await r.json();
  $('from').value = state.kpis.period.from;
  $('to').value = state.kpis.period.to;
  const sel = $('dept');
  const chosen = state.kpis.dept || '';
  sel.replaceChildren();
  // The organisation, or (a department admin) all of her departments together.
  sel.append(el('option', { value: '', text: t(state.kpis.organisation ? 'organisation' : 'all_mine') }));
  for (const d of state.kpis.departments) {
    sel.append(el('option', { value: d.dept_id, text: `${d.name || d.dept_id} (${d.dept_id})` }));
  }
  sel.value = chosen;
  renderTiles();
  document.body.dataset.kpisLoaded = `${state.kpis.period.from}..${state.kpis.period.to}:${chosen}`;
}

function renderTiles() {
  const k = state.kpis;
  $('period-label').textContent = `${k.period.from} – ${k.period.to} (${t('vs')} ${k.previous.from} – ${k.previous.to})`;
  const tiles = $('tiles');
  tiles.replaceChildren();
  for (const kpi of k.kpis) {
    const ch = kpi.change;
    const cls = ch && ch.good === true ? 'change good' : ch && ch.good === false ? 'change bad' : 'change';
    const tile = el('div', { class: 'tile', 'data-kpi': kpi.key, tabindex: '0', onclick: () => drill(kpi) },
      el('h3', { text: state.lang === 'zh' ? kpi.zh : kpi.en }),
      el('div', { class: 'value', 'data-value': kpi.value === null ? '' : String(kpi.value), text: kpi.display ?? '—' }),
      el('div', { class: cls, text: ch ? (state.lang === 'zh' ? ch.zh : ch.en) : '' }));
    const line = sparkline(kpi.detail && kpi.detail.daily);
    if (line) tile.append(line);
    tiles.append(tile);
  }
}

// The period's daily series as a sparkline: each day's `value`, or its active share of the
// headcount, or its first number.
function sparkline(daily) {
  if (!Array.isArray(daily) || daily.length < 2) return null;
  const ys = daily.map((d) => {
    if (typeof d.value === 'number') return d.value;
    if (typeof d.active === 'number' && d.headcount) return d.active / d.headcount;
    const n = Object.values(d).find((v) => typeof v === 'number');
    return n === undefined ? 0 : n;
  });
  const max = Math.max(...ys), min = Math.min(...ys), span = max - min || 1;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 100 24');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('preserveAspectRatio', 'none');
  const path = document.createElementNS(ns, 'polyline');
  path.setAttribute('points', ys.map((y, i) => `${(i * 100 / (ys.length - 1)).toFixed(2)},${(22 - 20 * (y - min) / span).toFixed(2)}`).join(' '));
  path.setAttribute('fill', 'none');
  path.setAttribute('stroke', '#2f6fae');
  path.setAttribute('stroke-width', '1.5');
  path.setAttribute('vector-effect', 'non-scaling-stroke');
  svg.append(path);
  return svg;
}

function bars(obj) {
  // An inline SVG bar chart of an object's numeric fields (a breakdown).
  const entries = Object.entries(obj).filter(([, v]) => typeof v === 'number');
  if (!entries.length) return null;
  const max = Math.max(...entries.map(([, v]) => Math.abs(v))) || 1;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  const h = 22 * entries.length;
  svg.setAttribute('viewBox', `0 0 600 ${h}`);
  svg.setAttribute('width', '100%');
  entries.forEach(([k, v], i) => {
    const text = document.createElementNS(ns, 'text');
    text.setAttribute('x', '0'); text.setAttribute('y', String(i * 22 + 15));
    text.setAttribute('font-size', '12'); text.textContent = k;
    const rect = document.createElementNS(ns, 'rect');
    rect.setAttribute('x', '160'); rect.setAttribute('y', String(i * 22 + 4));
    rect.setAttribute('height', '14'); rect.setAttribute('fill', '#2f6fae');
    rect.setAttribute('width', String(Math.max(1, 380 * Math.abs(v) / max)));
    const val = document.createElementNS(ns, 'text');
    val.setAttribute('x', String(170 + 380 * Math.abs(v) / max)); val.setAttribute('y', String(i * 22 + 15));
    val.setAttribute('font-size', '12'); val.textContent = Number.isInteger(v) ? String(v) : v.toFixed(3);
    svg.append(text, rect, val);
  });
  return svg;
}

function drill(kpi) {
  $('drill').hidden = false;
  $('drill-title').textContent = state.lang === 'zh' ? kpi.zh : kpi.en;
  const chart = $('drill-chart');
  chart.replaceChildren();
  const table = $('drill-fields');
  table.replaceChildren(el('tr', {}, el('th', { text: t('field') }), el('th', { text: t('value') })));
  for (const [k, v] of Object.entries(kpi.detail || {})) {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const svg = bars(v);
      if (svg && !chart.firstChild) chart.append(el('h3', { text: k }), svg);
    }
    table.append(el('tr', {}, el('td', { text: k }), el('td', { text: typeof v === 'object' ? JSON.stringify(v) : String(v) })));
  }
  $('drill-sql').textContent = kpi.sql || '';
  $('drill').scrollIntoView();
}

// ---- behaviour ---------------------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';
function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function heatmap(cells) {
  const apps = [...new Set(cells.map((c) => c.app))].sort();
  const max = Math.max(1, ...cells.map((c) => c.count));
  const cw = 18, ch = 18, left = 90;
  const svg = svgEl('svg', { viewBox: `0 0 ${left + 24 * cw} ${apps.length * ch + 20}`, width: '100%', id: 'heatmap-svg' });
  apps.forEach((app, i) => {
    svg.append(svgEl('text', { x: 0, y: i * ch + 13, 'font-size': 11 }, app));
    for (let h = 0; h < 24; h++) {
      const c = cells.find((x) => x.app === app && x.hour === h);
      const n = c ? c.count : 0;
      const r = svgEl('rect', {
        x: left + h * cw, y: i * ch, width: cw - 1, height: ch - 1,
        fill: n ? `rgba(47,111,174,${(0.12 + 0.88 * n / max).toFixed(3)})` : '#eef2f6',
        'data-app': app, 'data-hour': h, 'data-count': n,
      });
      r.append(svgEl('title', {}, `${app} ${h}:00 — ${n}`));
      svg.append(r);
    }
  });
  for (let h = 0; h < 24; h += 3) svg.append(svgEl('text', { x: left + h * cw, y: apps.length * ch + 14, 'font-size': 10 }, String(h)));
  return svg;
}

async function loadBehaviour() {
  $('behaviour-error').textContent = '';
  if (!state.kpis) await loadKpis();
  const k = state.kpis;
  if (!k) return;
  $('behaviour-period').textContent = `${k.period.from} – ${k.period.to}`;
  const get = (key) => (k.kpis.find((x) => x.key === key) || {}).detail || {};
  $('heatmap').replaceChildren(heatmap(get('app_click_heatmap').cells || []));
  const buckets = get('message_response_time').read_buckets || {};
  $('read-latency').replaceChildren(bars(buckets) || el('span', { text: '—' }));
  const pending = get('approval_completion_rate').pending;
  $('pending-count').textContent = pending === undefined ? '' : `${pending} ${t('pending_count')}`;
  const q = new URLSearchParams({ from: k.period.from, to: k.period.to });
  const r = await api('GET', '/api/v1/kpis/by-dept?' + q);
  if (r.ok) {
    const rows = (await r.json()).departments;
    const shares = {};
    for (const d of rows) {
      const v = d.kpis.calendar_adoption_rate && d.kpis.calendar_adoption_rate.value;
      if (typeof v === 'number') shares[d.name || d.dept_id] = v;
    }
    $('calendar-depts').replaceChildren(bars(shares) || el('span', { text: '—' }));
  } else {
    $('behaviour-error').textContent = await errorText(r);
  }
  // The instances themselves, with their age (not for executives: event-level detail).
  const table = $('pending-table');
  table.replaceChildren();
  if (state.me.role === 'executive') { document.body.dataset.behaviourLoaded = 'yes'; return; }
  const pq = new URLSearchParams();
  if (k.dept) pq.set('dept', k.dept);
  const p = await api('GET', '/api/v1/approvals/pending?' + pq);
  if (!p.ok) { $('behaviour-error').textContent = await errorText(p); return; }
  const res = await p.json();
  const overdue = res.pending.filter((row) => row.overdue).length;
  $('pending-open').textContent = `${res.pending.length} ${t('open_now')} (${overdue} ${t('overdue_count')})`;
  table.append(el('tr', {}, ...['instance', 'submitter', 'process', 'submitted', 'age_hours'].map((c) => el('th', { text: t(c) }))));
  for (const row of res.pending) {
    table.append(el('tr', { class: row.overdue ? 'overdue' : '', 'data-instance': row.instance },
      el('td', { text: row.instance }), el('td', { text: row.user_id || '' }), el('td', { text: row.process || '' }),
      el('td', { text: row.submitted }), el('td', { text: String(row.age_hours) })));
  }
  document.body.dataset.behaviourLoaded = 'yes';
}

// ---- reports -----------------------------------------------------------------------------

async function loadReports() {
  $('reports-error').textContent = '';
  if (!$('report-month').value) {
    const d = new Date();
    d.setDate(0); // the last day of last month
    $('report-month').value = d.toISOString().slice(0, 7);
  }
  const r = await api('GET', '/api/v1/reports');
  if (!r.ok) { $('reports-error').textContent = await errorText(r); return; }
  const table = $('reports-table');
  table.replaceChildren(el('tr', {}, el('th', { text: t('month') }), el('th', { text: t('generated') }), el('th', { text: 'HTML' }), el('th', { text: 'PDF' })));
  for (const rep of (await r.json()).reports) {
    const link = (href, label) => (href ? el('a', { href, download: '', class: 'report-' + label.toLowerCase(), text: label }) : el('span', { text: '' }));
    table.append(el('tr', { 'data-month': rep.month }, el('td', { text: rep.month }), el('td', { text: rep.generated_at || '' }),
      el('td', {}, link(rep.html, 'HTML')), el('td', {}, link(rep.pdf, 'PDF'))));
  }
  document.body.dataset.reportsLoaded = String(Date.now());
}

async function generateReport(ev) {
  ev.preventDefault();
  $('reports-error').textContent = '';
  $('report-status').textContent = t('generating');
  const r = await api('POST', '/api/v1/reports', { month: $('report-month').value, pdf: $('report-pdf').checked });
  $('report-status').textContent = '';
  if (!r.ok) { $('reports-error').textContent = await errorText(r); return; }
  loadReports();
}

// ---- alerts ------------------------------------------------------------------------------

// The filter bar's choices as the API's query string (the filtering is the server's).
function alertsQuery() {
  const q = new URLSearchParams();
  for (const [id, name] of [['af-rule', 'rule'], ['af-severity', 'severity'], ['af-state', 'state'],
    ['af-dept', 'dept'], ['af-from', 'from'], ['af-to', 'to']]) {
    if ($(id).value) q.set(name, $(id).value);
  }
  return q;
}

function fillSelect(sel, values, label) {
  const keep = sel.value;
  sel.replaceChildren(el('option', { value: '', text: t(label), 'data-i18n': label }),
    ...values.map(([v, text]) => el('option', { value: v, text })));
  sel.value = values.some(([v]) => v === keep) ? keep : '';
}

async function loadAlerts() {
  $('alerts-error').textContent = '';
  $('evidence').hidden = true;
  const r = await api('GET', '/api/v1/findings?' + alertsQuery());
  if (!r.ok) { $('alerts-error').textContent = await errorText(r); return; }
  const data = await r.json();
  fillSelect($('af-rule'), data.rules.map((x) => [x, x]), 'any_rule');
  fillSelect($('af-dept'), data.departments.map((x) => [x, x]), 'any_dept');
  const table = $('alerts-table');
  table.replaceChildren();
  $('alerts-count').textContent = data.findings ? `${data.findings.length} ${t('findings_shown')}` : '';
  document.body.dataset.alertsLoaded = alertsQuery().toString() || 'all';
  if (data.counts) {
    loadAlertAdmin(false);
    table.append(el('tr', {}, ...['rule', 'severity', 'count_firing', 'count_resolved'].map((k) => el('th', { text: t(k) }))));
    for (const c of data.counts) {
      table.append(el('tr', {}, el('td', { text: c.rule }), el('td', { text: c.severity }),
        el('td', { text: String(c.firing) }), el('td', { text: String(c.resolved) })));
    }
    return;
  }
  loadAlertAdmin(data.can_acknowledge);
  if (!data.findings.length) { table.append(el('tr', {}, el('td', { text: t('no_findings') }))); return; }
  table.append(el('tr', {}, ...['rule', 'key', 'severity', 'state', 'dept', 'fired', 'summary', 'acked', ''].map((k) => el('th', { text: k ? t(k) : '' }))));
  for (const f of data.findings) {
    const cell = el('td');
    if (data.evidence) {
      cell.append(el('button', {
        type: 'button', class: 'evidence', 'data-key': f.key, text: t('show_evidence'),
        onclick: () => showEvidence(f),
      }));
    }
    if (data.can_acknowledge && f.firing && !f.acked_by) {
      cell.append(el('button', {
        type: 'button', class: 'ack', 'data-key': f.key, text: t('acknowledge'),
        onclick: async () => {
          const a = await api('POST', '/api/v1/findings/ack', { rule: f.rule, key: f.key, comment: 'from the dashboard' });
          if (!a.ok) { $('alerts-error').textContent = await errorText(a); return; }
          loadAlerts();
        },
      }));
    }
    if (data.can_acknowledge && f.firing) {
      cell.append(el('button', {
        type: 'button', class: 'silence', 'data-key': f.key, text: t('silence'),
        onclick: () => {
          state.silencing = f;
          $('silence-target').textContent = `${f.rule} ${f.key}`;
          $('silence-form').hidden = false;
          $('silence-comment').focus();
        },
      }));
    }
    table.append(el('tr', { 'data-rule': f.rule, 'data-key': f.key },
      el('td', { text: f.rule }), el('td', { text: f.key }), el('td', { text: f.severity }),
      el('td', { class: f.firing ? 'firing' : '', text: f.firing ? t('firing') : t('resolved') }),
      el('td', { text: f.dept_id || '' }), el('td', { text: f.fired_at }),
      el('td', { text: f.summary ?? '' }), el('td', { class: 'acked-by', text: f.acked_by || '' }), cell));
  }
}

async function showEvidence(f) {
  const r = await api('GET', '/api/v1/findings/evidence?' + new URLSearchParams({ rule: f.rule, key: f.key }));
  if (!r.ok) { $('alerts-error').textContent = await errorText(r); return; }
  const data = await r.json();
  $('evidence-target').textContent = `${f.rule} ${f.key}`;
  const table = $('evidence-table');
  table.replaceChildren(el('tr', {}, ...['ts', 'summary', 'fields'].map((k) => el('th', { text: t(k) }))));
  for (const e of data.evidence) {
    const fields = el('td');
    fields.append(el('pre', { text: JSON.stringify(e.fields, null, 1) }));
    table.append(el('tr', { class: 'evidence-row' }, el('td', { text: e.ts }), el('td', { text: e.summary }), fields));
  }
  $('evidence').hidden = false;
  $('evidence').scrollIntoView();
}

function simpleTable(table, rows, cols) {
  table.replaceChildren(el('tr', {}, ...cols.map(([, label]) => el('th', { text: t(label) }))));
  for (const r of rows) {
    table.append(el('tr', {}, ...cols.map(([k]) => {
      const v = r[k];
      return el('td', { text: v === null || v === undefined ? '' : Array.isArray(v) ? v.join(' ') : String(v) });
    })));
  }
}

async function loadAlertAdmin(canAct) {
  $('alerts-admin').hidden = !canAct;
  if (canAct) {
    const r = await api('GET', '/api/v1/silences');
    if (r.ok) {
      simpleTable($('silences-table'), (await r.json()).silences,
        [['matchers', 'matchers'], ['ends_at', 'until'], ['created_by', 'by'], ['comment', 'comment']]);
    }
  }
  const compliance = state.me && state.me.role === 'compliance';
  $('alerts-deliveries').hidden = !compliance;
  if (compliance) {
    const r = await api('GET', '/api/v1/deliveries');
    if (r.ok) {
      simpleTable($('deliveries-table'), (await r.json()).deliveries,
        [['channel', 'channel'], ['state', 'state'], ['attempts', 'attempts'], ['created_at', 'created'], ['sent_at', 'sent'], ['last_error', 'last_error']]);
    }
  }
}

async function submitSilence(ev) {
  ev.preventDefault();
  const f = state.silencing;
  if (!f) return;
  const matchers = [`rule=${f.rule}`, `key=${f.key}`];
  if (f.dept_id) matchers.push(`dept=${f.dept_id}`);
  const r = await api('POST', '/api/v1/silences', {
    matchers, duration: $('silence-duration').value, comment: $('silence-comment').value,
  });
  if (!r.ok) { $('alerts-error').textContent = await errorText(r); return; }
  $('silence-form').hidden = true;
  $('silence-comment').value = '';
  state.silencing = null;
  loadAlerts();
}

// ---- SQL console and audit ---------------------------------------------------------------

function grid(table, result) {
  table.replaceChildren(el('tr', {}, ...result.columns.map((c) => el('th', { text: c.name }))));
  for (const row of result.rows) {
    table.append(el('tr', {}, ...result.columns.map((c) => {
      const v = row[c.name];
      return el('td', { text: v === null || v === undefined ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v) });
    })));
  }
}

async function runSql(sql, table, errorBox, status) {
  errorBox.textContent = '';
  const r = await api('POST', '/api/v1/sql', { sql });
  if (!r.ok) { errorBox.textContent = await errorText(r); table.replaceChildren(); return null; }
  const result = await r.json();
  grid(table, result);
  if (status) status.textContent = `${result.row_count} ${t('rows')}`;
  return result;
}

const quote = (v) => `'${String(v).replace(/'/g, "''")}'`;

// The account's own recent queries, from the query log (every role that may use the console
// reads at least its own entries there); a click puts one back in the editor.
async function loadHistory() {
  const r = await api('POST', '/api/v1/sql', {
    sql: `SELECT seq, outcome, sql FROM query_log WHERE account = ${quote(state.me.account)} AND path = 'dashboard' ` +
      "AND sql NOT LIKE 'SELECT seq, outcome, sql FROM query_log%' " +
      "AND sql NOT LIKE 'SELECT table_name, column_name, data_type FROM information_schema%' ORDER BY seq DESC LIMIT 20",
  });
  if (!r.ok) return;
  const list = $('sql-history-list');
  list.replaceChildren(...(await r.json()).rows.map((row) => el('li', {
    class: row.outcome === 'ok' ? '' : 'failed', title: row.outcome,
    onclick: () => { $('sql-text').value = row.sql; },
  }, el('code', { text: row.sql }))));
}

async function runConsole() {
  await runSql($('sql-text').value, $('sql-result'), $('sql-error'), $('sql-status'));
  loadHistory();
}

async function download(accept, name) {
  $('sql-error').textContent = '';
  const r = await api('POST', '/api/v1/sql', { sql: $('sql-text').value }, accept);
  if (!r.ok) { $('sql-error').textContent = await errorText(r); return; }
  const blob = await r.blob();
  const a = el('a', { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

// The tables and columns this account may query, from its own session's information_schema
// (so a refused table is not offered).
async function loadColumns() {
  if ($('sql-columns').dataset.loaded === state.me.account) return;
  const r = await api('POST', '/api/v1/sql', {
    sql: "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
  });
  if (!r.ok) return;
  const byTable = {};
  for (const row of (await r.json()).rows) (byTable[row.table_name] ||= []).push(`${row.column_name} ${row.data_type}`);
  const box = $('sql-columns');
  box.replaceChildren(...Object.entries(byTable).map(([table, cols]) =>
    el('p', { 'data-table': table }, el('b', { text: table }), document.createTextNode(': ' + cols.join(', ')))));
  box.dataset.loaded = state.me.account;
}

// The query log through the account's own SQL session (so its visibility is the role's), with
// the filters as WHERE clauses over values quoted as SQL strings.
async function loadAudit(ev) {
  if (ev) ev.preventDefault();
  const where = [];
  if ($('audit-filter').value) where.push(`account = ${quote($('audit-filter').value)}`);
  if ($('audit-path').value) where.push(`path = ${quote($('audit-path').value)}`);
  if ($('audit-outcome').value) where.push(`outcome = ${quote($('audit-outcome').value)}`);
  if ($('audit-text').value) where.push(`strpos(lower(sql), lower(${quote($('audit-text').value)})) > 0`);
  if ($('audit-from').value) where.push(`at >= TIMESTAMP ${quote($('audit-from').value + 'T00:00:00Z')}`);
  if ($('audit-to').value) where.push(`at < TIMESTAMP ${quote($('audit-to').value + 'T00:00:00Z')} + INTERVAL '1 day'`);
  const sql = 'SELECT seq, at, account, role, path, outcome, rows, duration_ms, sql, error FROM query_log' +
    (where.length ? ' WHERE ' + where.join(' AND ') : '') + ' ORDER BY seq DESC LIMIT 500';
  const result = await runSql(sql, $('audit-table'), $('audit-error'), $('audit-status'));
  document.body.dataset.auditLoaded = result ? String(result.row_count) : 'error';
}

// ---- start -------------------------------------------------------------------------------

async function start() {
  $('lang').addEventListener('click', () => {
    state.lang = state.lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('auditlake.lang', state.lang);
    translate();
  });
  $('login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('login-error').textContent = '';
    const r = await api('POST', '/api/v1/session', { name: $('login-name').value, password: $('login-password').value });
    if (!r.ok) { $('login-error').textContent = r.status === 429 ? t('throttled') : t('bad_login'); return; }
    state.me = await r.json();
    $('login-password').value = '';
    route();
  });
  $('logout').addEventListener('click', async () => {
    await api('DELETE', '/api/v1/session');
    state.me = null;
    state.kpis = null;
    show('login');
  });
  $('period').addEventListener('submit', (ev) => { ev.preventDefault(); loadKpis(); });
  $('period-kind').addEventListener('change', () => { if ($('period-kind').value !== 'custom') loadKpis(); });
  $('sql-run').addEventListener('click', runConsole);
  $('sql-csv').addEventListener('click', () => download('text/csv', 'auditlake-query.csv'));
  $('sql-parquet').addEventListener('click', () => download('application/vnd.apache.parquet', 'auditlake-query.parquet'));
  $('audit-form').addEventListener('submit', loadAudit);
  $('alerts-filter').addEventListener('submit', (ev) => { ev.preventDefault(); loadAlerts(); });
  $('silence-form').addEventListener('submit', submitSilence);
  $('report-form').addEventListener('submit', generateReport);
  window.addEventListener('hashchange', route);
  translate();
  const r = await api('GET', '/api/v1/session');
  state.me = r.ok ? await r.json() : null;
  route();
}

start();
