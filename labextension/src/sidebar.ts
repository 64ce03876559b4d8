// The Jobs panel of the left sidebar: every job of the server's store, filters, and one job's details.
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import {
  BACKENDS,
  IJob,
  IMetric,
  STATES,
  TERMINAL,
  age,
  cancelJob,
  listJobs,
  openStream,
  readLog,
  readMetrics,
  totalSteps
} from './api';
import { lossChart } from './chart';

/** What the panel knows of a job's metrics.jsonl: last loss of each step, by kind. */
interface IMetricState {
  offset: number;
  train: Map<number, number>;
  valid: Map<number, number>;
  lastStep: number | null;
  done: IMetric | null;
  busy: boolean;
}

export interface IJobsPanelOptions {
  openForm: () => void;
  openInNotebook: (job: IJob) => Promise<void>;
  refreshSeconds: () => number;
}

const LOG_LIMIT = 200_000;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    node.setAttribute(k, v);
  }
  for (const c of children) {
    node.append(c);
  }
  return node;
}

function select(cls: string, title: string, options: Array<[string, string]>): HTMLSelectElement {
  const s = h('select', { class: `jp-mod-styled ${cls}`, title, 'aria-label': title });
  for (const [value, label] of options) {
    s.append(h('option', { value }, label));
  }
  return s;
}

export class JobsPanel extends Widget {
  constructor(private options: IJobsPanelOptions) {
    super();
    this.addClass('physviz-JobsPanel');
    this.id = 'physviz-jobs';
    this.title.caption = 'physviz jobs';
    const newButton = h('button', { class: 'jp-mod-styled jp-mod-accept physviz-new', title: 'Open the fine-tune form' },
      'New fine-tune');
    newButton.onclick = () => this.options.openForm();
    const refresh = h('button', { class: 'jp-mod-styled physviz-refresh', title: 'Reload the job list' }, 'Refresh');
    refresh.onclick = () => void this.refresh();
    this.statusFilter = select('physviz-filter-status', 'Filter by status', [
      ['', 'all states'],
      ...STATES.map(s => [s, s] as [string, string])
    ]);
    this.backendFilter = select('physviz-filter-backend', 'Filter by backend', [
      ['', 'all backends'],
      ...BACKENDS.map(s => [s, s] as [string, string])
    ]);
    this.statusFilter.onchange = this.backendFilter.onchange = () => this.renderList();
    this.list = h('ul', { class: 'physviz-jobs' });
    this.message = h('div', { class: 'physviz-message' });
    this.detail = h('div', { class: 'physviz-detail' });
    this.node.append(
      h('div', { class: 'physviz-header' }, h('h2', {}, 'physviz jobs'), newButton, refresh),
      h('div', { class: 'physviz-filters' }, this.statusFilter, this.backendFilter),
      this.message,
      this.list,
      this.detail
    );
  }

  /** Reload the job list now (and keep reloading at the settings' interval while shown). */
  async refresh(): Promise<void> {
    try {
      this.jobs = await listJobs();
      this.message.textContent = '';
    } catch (err) {
      this.message.textContent = `Cannot list jobs: ${(err as Error).message}`;
      return;
    }
    for (const job of this.jobs) {
      void this.pollMetrics(job);
    }
    this.renderList();
    const chosen = this.jobs.find(j => j.id === this.selected);
    if (chosen) {
      this.updateDetail(chosen);
    }
  }

  /** Show one job's details (log tail, loss curve, actions). */
  select(id: string | null): void {
    if (id === this.selected) {
      return;
    }
    this.closeStreams();
    this.selected = id;
    this.detail.textContent = '';
    this.renderList();
    const job = this.jobs.find(j => j.id === id);
    if (job) {
      this.buildDetail(job);
    }
  }

  protected onAfterAttach(): void {
    if (this.isVisible) {
      void this.refresh();
    }
    this.schedule();
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  protected onBeforeDetach(): void {
    window.clearTimeout(this.timer);
  }

  dispose(): void {
    window.clearTimeout(this.timer);
    this.closeStreams();
    super.dispose();
  }

  private schedule(): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(async () => {
      if (this.isVisible && !document.hidden) {
        await this.refresh();
      }
      if (!this.isDisposed) {
        this.schedule();
      }
    }, Math.max(1, this.options.refreshSeconds()) * 1000);
  }

  private metricState(id: string): IMetricState {
    let m = this.metrics.get(id);
    if (!m) {
      m = { offset: 0, train: new Map(), valid: new Map(), lastStep: null, done: null, busy: false };
      this.metrics.set(id, m);
    }
    return m;
  }

  private addMetrics(id: string, rows: IMetric[]): void {
    const m = this.metricState(id);
    for (const r of rows) {
      if (r.kind === 'train' && typeof r.step === 'number') {
        m.train.set(r.step, typeof r.loss === 'number' ? r.loss : NaN);
        m.lastStep = Math.max(m.lastStep ?? 0, r.step); // steps count from 1: 'step' is the number done
      } else if (r.kind === 'valid' && typeof r.step === 'number') {
        m.valid.set(r.step, typeof r.loss === 'number' ? r.loss : NaN);
      } else if (r.kind === 'done') {
        m.done = r;
        if (typeof r.step === 'number') {
          m.lastStep = Math.max(m.lastStep ?? 0, r.step); // steps count from 1: 'step' is the number done
        }
      }
    }
  }

  /** Read new metrics of a job by offset (the list's progress); the selected job streams them instead. */
  private async pollMetrics(job: IJob): Promise<void> {
    const m = this.metricState(job.id);
    if (m.busy || (m.done && TERMINAL.includes(job.status)) || (job.id === this.selected && this.metricsStream)) {
      return;
    }
    if (TERMINAL.includes(job.status) && m.offset > 0 && this.settled.has(job.id)) {
      return;
    }
    m.busy = true;
    try {
      for (let i = 0; i < 20; i++) {
        const chunk = await readMetrics(job.id, m.offset);
        const moved = chunk.offset !== m.offset;
        this.addMetrics(job.id, chunk.metrics);
        m.offset = chunk.offset;
        if (!moved) {
          break;
        }
      }
      if (TERMINAL.includes(job.status)) {
        this.settled.add(job.id);
      }
    } catch {
      // a job whose files are gone: no progress to show
    } finally {
      m.busy = false;
    }
    this.renderProgress(job);
    if (job.id === this.selected) {
      this.drawChart();
    }
  }

  private progressText(job: IJob): string {
    const m = this.metrics.get(job.id);
    const steps = totalSteps(job);
    const done = m?.lastStep ?? 0;
    if (steps === null) {
      return m?.lastStep ? `step ${done}` : '';
    }
    return `${done}/${steps}`;
  }

  private renderProgress(job: IJob): void {
    const row = this.list.querySelector(`li[data-id="${CSS.escape(job.id)}"] .physviz-progress`);
    if (row) {
      row.textContent = this.progressText(job);
    }
  }

  private visible(): IJob[] {
    const s = this.statusFilter.value;
    const b = this.backendFilter.value;
    return this.jobs.filter(j => (!s || j.status === s) && (!b || j.backend === b));
  }

  private renderList(): void {
    const rows = this.visible()
      .slice()
      .reverse()
      .map(job => {
        const hosts = (job.hosts || []).join(', ') || (job.backend === 'local' ? 'this server' : '');
        const li = h(
          'li',
          {
            class: 'physviz-job' + (job.id === this.selected ? ' jp-mod-selected' : ''),
            'data-id': job.id,
            'data-status': job.status,
            'data-backend': job.backend,
            title: job.id,
            tabindex: '0'
          },
          h('span', { class: 'physviz-name' }, job.name),
          h('span', { class: `physviz-badge physviz-status-${job.status}` }, job.status),
          h(
            'div',
            { class: 'physviz-meta' },
            h('span', { class: 'physviz-backend' }, job.backend),
            h('span', { class: 'physviz-hosts' }, hosts),
            h('span', { class: 'physviz-progress' }, this.progressText(job)),
            h('span', { class: 'physviz-age' }, age(job.created))
          )
        );
        li.onclick = () => this.select(job.id);
        li.onkeydown = (e: KeyboardEvent) => {
          if (e.key === 'Enter') {
            this.select(job.id);
          }
        };
        return li;
      });
    this.list.replaceChildren(...rows);
    if (!rows.length) {
      this.list.append(h('li', { class: 'physviz-empty' }, this.jobs.length ? 'No job matches the filters.' : 'No jobs yet.'));
    }
  }

  // -- one job's details -------------------------------------------------------------------
  private buildDetail(job: IJob): void {
    const cancel = h('button', { class: 'jp-mod-styled jp-mod-warn physviz-cancel' }, 'Cancel');
    cancel.onclick = () => void this.confirmCancel(job.id);
    const open = h('button', { class: 'jp-mod-styled physviz-open' }, 'Open in notebook');
    open.onclick = () => {
      const current = this.jobs.find(j => j.id === job.id) || job;
      void this.options.openInNotebook(current);
    };
    const res = job.spec.resources || {};
    const nproc = res.procs_per_node || res.gpus_per_node || 1;
    const world = (res.nodes || 1) * nproc;
    const ranks: Array<[string, string]> = [];
    for (let r = 0; r < world; r++) {
      ranks.push([String(r), `rank ${r}: stdout + stderr`]);
    }
    for (let n = 0; n < (res.nodes || 1); n++) {
      ranks.push([`node${n}`, `node ${n} launcher`]);
    }
    if (job.backend === 'slurm') {
      ranks.push(['batch', 'Slurm batch script']);
    }
    this.rankSelect = select('physviz-rank', 'Log of rank', ranks);
    this.rankSelect.onchange = () => this.startLog();
    this.logBox = h('pre', { class: 'physviz-log' });
    this.chartBox = h('div', { class: 'physviz-chart-box' });
    this.statusBox = h('span', { class: 'physviz-badge physviz-detail-status' });
    this.errorBox = h('div', { class: 'physviz-job-error' });
    this.detail.replaceChildren(
      h('h3', { class: 'physviz-detail-name' }, job.name),
      h('div', { class: 'physviz-detail-row' }, this.statusBox, h('code', { class: 'physviz-detail-id' }, job.id)),
      this.errorBox,
      h('div', { class: 'physviz-actions' }, open, cancel),
      h('h4', {}, 'Loss'),
      this.chartBox,
      h('h4', {}, 'Log ', this.rankSelect),
      this.logBox
    );
    this.updateDetail(job);
    this.drawChart();
    this.startMetrics(job);
    this.startLog();
  }

  private updateDetail(job: IJob): void {
    if (!this.statusBox) {
      return;
    }
    this.statusBox.textContent = job.status;
    this.statusBox.className = `physviz-badge physviz-detail-status physviz-status-${job.status}`;
    this.statusBox.dataset.status = job.status;
    this.errorBox!.textContent = job.status === 'failed' && job.error ? String(job.error) : '';
    const cancel = this.detail.querySelector('.physviz-cancel') as HTMLButtonElement | null;
    if (cancel) {
      cancel.hidden = TERMINAL.includes(job.status); // a finished job has nothing left to cancel
    }
  }

  private drawChart(): void {
    if (!this.chartBox || !this.selected) {
      return;
    }
    const m = this.metricState(this.selected);
    const pts = (map: Map<number, number>) =>
      [...map.entries()].sort((a, b) => a[0] - b[0]) as Array<[number, number]>;
    this.chartBox.replaceChildren(
      lossChart([
        { label: 'train', cls: 'physviz-train', points: pts(m.train) },
        { label: 'validation', cls: 'physviz-valid', points: pts(m.valid) }
      ])
    );
  }

  private setStatus(id: string, status: string): void {
    const job = this.jobs.find(j => j.id === id);
    if (job && job.status !== status) {
      job.status = status;
      this.renderList();
      this.updateDetail(job);
    }
  }

  private startMetrics(job: IJob): void {
    const m = this.metricState(job.id);
    if (TERMINAL.includes(job.status) && this.settled.has(job.id)) {
      return;
    }
    const source = openStream(job.id, 'metrics', `?offset=${m.offset}`);
    this.metricsStream = source;
    source.addEventListener('metrics', (e: MessageEvent) => {
      const data = JSON.parse(e.data);
      if (data.offset >= m.offset) {
        this.addMetrics(job.id, data.metrics);
        m.offset = data.offset;
        this.renderProgress(job);
        this.drawChart();
      }
    });
    source.addEventListener('status', (e: MessageEvent) => this.setStatus(job.id, JSON.parse(e.data).status));
    source.addEventListener('end', (e: MessageEvent) => {
      source.close();
      this.metricsStream = null;
      this.settled.add(job.id);
      this.setStatus(job.id, JSON.parse(e.data).status);
      void this.refresh();
    });
    source.onerror = () => {
      // The stream broke: read by polling at the refresh interval instead.
      source.close();
      if (this.metricsStream === source) {
        this.metricsStream = null;
      }
    };
  }

  private startLog(): void {
    const job = this.jobs.find(j => j.id === this.selected);
    if (!job || !this.logBox || !this.rankSelect) {
      return;
    }
    this.logStream?.close();
    window.clearTimeout(this.logTimer);
    const rank = this.rankSelect.value;
    const box = this.logBox;
    box.textContent = '';
    let offset = 0;
    const append = (text: string) => {
      const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
      // progress bars redraw their line with a carriage return: show each state on its own line
      box.textContent = ((box.textContent || '') + text.replace(/\r(?!\n)/g, '\n')).slice(-LOG_LIMIT);
      if (atEnd) {
        box.scrollTop = box.scrollHeight;
      }
    };
    const poll = async () => {
      // Polling fallback: at the refresh interval until the job has ended and its log is read.
      try {
        const chunk = await readLog(job.id, rank, offset);
        append(chunk.text);
        offset = chunk.offset;
        if (TERMINAL.includes(chunk.status) && !chunk.text) {
          return;
        }
      } catch (err) {
        append(`\n[log unavailable: ${(err as Error).message}]\n`);
        return;
      }
      if (this.selected === job.id && this.rankSelect?.value === rank) {
        this.logTimer = window.setTimeout(poll, this.options.refreshSeconds() * 1000);
      }
    };
    const source = openStream(job.id, 'logs', `?offset=0&rank=${encodeURIComponent(rank)}`);
    this.logStream = source;
    source.addEventListener('log', (e: MessageEvent) => {
      const data = JSON.parse(e.data);
      append(data.text);
      offset = data.offset;
    });
    source.addEventListener('end', () => {
      source.close();
      this.logStream = null;
    });
    source.onerror = () => {
      source.close();
      if (this.logStream === source) {
        this.logStream = null;
        void poll();
      }
    };
  }

  private closeStreams(): void {
    this.logStream?.close();
    this.metricsStream?.close();
    this.logStream = this.metricsStream = null;
    window.clearTimeout(this.logTimer);
  }

  private async confirmCancel(id: string): Promise<void> {
    const job = this.jobs.find(j => j.id === id);
    const result = await showDialog({
      title: 'Cancel job?',
      body: `Cancel "${job?.name ?? id}" (${id})? Its processes on every host are ended.`,
      buttons: [Dialog.cancelButton({ label: 'Keep running' }), Dialog.warnButton({ label: 'Cancel job' })]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      const after = await cancelJob(id);
      this.setStatus(id, after.status);
    } catch (err) {
      this.message.textContent = `Cancel failed: ${(err as Error).message}`;
    }
    await this.refresh();
  }

  private jobs: IJob[] = [];
  private metrics = new Map<string, IMetricState>();
  private settled = new Set<string>();
  private selected: string | null = null;
  private timer = 0;
  private logTimer = 0;
  private logStream: EventSource | null = null;
  private metricsStream: EventSource | null = null;
  private statusFilter: HTMLSelectElement;
  private backendFilter: HTMLSelectElement;
  private list: HTMLUListElement;
  private message: HTMLDivElement;
  private detail: HTMLDivElement;
  private rankSelect: HTMLSelectElement | null = null;
  private logBox: HTMLPreElement | null = null;
  private chartBox: HTMLDivElement | null = null;
  private statusBox: HTMLSpanElement | null = null;
  private errorBox: HTMLDivElement | null = null;
}
