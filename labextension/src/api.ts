// The physviz REST API of the server extension (physviz/server/handlers.py), under the server's base URL.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export const STATES = ['pending', 'running', 'completed', 'failed', 'cancelled', 'unknown'];
export const TERMINAL = ['completed', 'failed', 'cancelled'];
export const BACKENDS = ['local', 'ssh', 'slurm'];

/** One job as GET physviz/api/jobs gives it (Job.to_dict() plus its status). */
export interface IJob {
  id: string;
  name: string;
  backend: string;
  status: string;
  created?: number;
  finished?: number;
  hosts?: string[];
  error?: string;
  spec: {
    train_config?: { steps?: number } | string | null;
    resources?: { nodes?: number; procs_per_node?: number; gpus_per_node?: number };
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** One metrics.jsonl record (physviz.train.metrics): kind train / valid / done. */
export interface IMetric {
  kind: string;
  step: number;
  loss?: number | null;
  checkpoint?: string;
  [key: string]: unknown;
}

/** A refusal of the submit route: field path -> sentence. */
export class FormError extends Error {
  constructor(
    message: string,
    public errors: Record<string, string>
  ) {
    super(message);
  }
}

const settings = ServerConnection.makeSettings();

/** The full URL of a physviz API path. */
export function apiUrl(...parts: string[]): string {
  return URLExt.join(settings.baseUrl, 'physviz', 'api', ...parts.map(encodeURIComponent));
}

/** Call the API (token and XSRF header come from ServerConnection); the parsed JSON reply. */
export async function request<T>(path: string[], init: RequestInit = {}, query = ''): Promise<T> {
  const response = await ServerConnection.makeRequest(apiUrl(...path) + query, init, settings);
  const text = await response.text();
  let body: any = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { message: text };
  }
  if (!response.ok) {
    const message = (body && body.message) || `${response.status} ${response.statusText}`;
    if (body && body.errors) {
      throw new FormError(message, body.errors);
    }
    throw new Error(message);
  }
  return body as T;
}

export async function listJobs(): Promise<IJob[]> {
  return (await request<{ jobs: IJob[] }>(['jobs'])).jobs;
}

export async function getJob(id: string): Promise<IJob> {
  return request<IJob>(['jobs', id]);
}

export async function cancelJob(id: string): Promise<IJob> {
  return request<IJob>(['jobs', id], { method: 'DELETE' });
}

export async function submitJob(form: Record<string, unknown>): Promise<IJob> {
  return request<IJob>(['jobs'], { method: 'POST', body: JSON.stringify(form) });
}

export async function readMetrics(
  id: string,
  offset: number
): Promise<{ metrics: IMetric[]; offset: number; status: string }> {
  return request(['jobs', id, 'metrics'], {}, `?offset=${offset}`);
}

export async function readLog(
  id: string,
  rank: string,
  offset: number
): Promise<{ text: string; offset: number; status: string }> {
  return request(['jobs', id, 'logs'], {}, `?offset=${offset}&rank=${encodeURIComponent(rank)}`);
}

/** The _xsrf cookie of this server (empty if there is none). */
function xsrfToken(): string {
  const match = document.cookie.match('\\b_xsrf=([^;]*)\\b');
  return match ? decodeURIComponent(match[1]) : '';
}

/** An EventSource on a job's log or metrics stream.
 *
 * The browser sends the session cookie; an EventSource cannot send headers, so the XSRF token goes in
 * the query (JupyterHub's single-user servers refuse cookie-authenticated API requests without it).
 */
export function openStream(id: string, what: 'logs' | 'metrics', query: string): EventSource {
  const xsrf = xsrfToken();
  const sep = query ? '&' : '?';
  return new EventSource(apiUrl('jobs', id, what, 'stream') + query + (xsrf ? `${sep}_xsrf=${encodeURIComponent(xsrf)}` : ''));
}

/** Total steps of a job's train config, if it has one. */
export function totalSteps(job: IJob): number | null {
  const cfg = job.spec && job.spec.train_config;
  return cfg && typeof cfg === 'object' && typeof cfg.steps === 'number' ? cfg.steps : null;
}

/** "3 min", "2 h", ... since a Unix time. */
export function age(seconds: number | undefined, now = Date.now() / 1000): string {
  if (!seconds) {
    return '';
  }
  const s = Math.max(0, now - seconds);
  if (s < 60) {
    return `${Math.floor(s)} s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min`;
  }
  if (s < 86400) {
    return `${Math.floor(s / 3600)} h`;
  }
  return `${Math.floor(s / 86400)} d`;
}
