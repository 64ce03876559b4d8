// The fine-tune form: posts to physviz/api/jobs and shows each refusal next to its field.
import { IDocumentManager } from '@jupyterlab/docmanager';
import { FileDialog } from '@jupyterlab/filebrowser';
import { Widget } from '@lumino/widgets';

import { BACKENDS, FormError, IJob, submitJob } from './api';

/** A saved SSH profile of the settings (no secrets: a key file path or the agent). */
export interface ISSHProfile {
  name: string;
  hosts: Array<string | { host: string; port?: number; user?: string; key_file?: string }>;
  shared_fs?: boolean;
}

/** A saved Slurm profile of the settings. */
export interface ISlurmProfile {
  name: string;
  partition?: string;
  account?: string;
  time_limit?: string;
  login?: string;
}

export interface IFormOptions {
  docManager: IDocumentManager | null;
  defaultBackend: () => string;
  sshProfiles: () => ISSHProfile[];
  slurmProfiles: () => ISlurmProfile[];
  submitted: (job: IJob) => void;
}

type Input = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

export class FinetuneForm extends Widget {
  constructor(private options: IFormOptions) {
    super();
    this.addClass('physviz-FinetuneForm');
    const form = h('form', { class: 'physviz-form', novalidate: '' });
    form.onsubmit = e => {
      e.preventDefault();
      void this.submit();
    };
    this.general = h('div', { class: 'physviz-field-error physviz-general-error', 'data-error-for': 'form' });
    this.result = h('div', { class: 'physviz-result' });
    const backend = this.choice('backend', BACKENDS.map(b => [b, b]));
    backend.value = options.defaultBackend();
    backend.onchange = () => this.showBackend();
    const model = this.input('model', 'text', 'bundled');
    model.value = 'bundled';
    const sshProfile = this.choice('ssh.profile', []);
    sshProfile.onchange = () => this.applySSHProfile();
    const slurmProfile = this.choice('slurm.profile', []);
    slurmProfile.onchange = () => this.applySlurmProfile();
    const prologue = h('textarea', { name: 'environment.prologue', rows: '3', class: 'jp-mod-styled physviz-prologue',
      placeholder: 'module load cuda\nsource ~/venvs/physviz/bin/activate', spellcheck: 'false' });
    this.inputs.set('environment.prologue', prologue);

    this.sshBox = h('fieldset', { class: 'physviz-backend-settings', 'data-backend': 'ssh' },
      h('legend', {}, 'SSH hosts'),
      this.row('ssh.profile', 'Saved profile', sshProfile),
      this.row('ssh.hosts', 'Hosts (node i runs on host i; comma separated)', this.input('ssh.hosts', 'text', 'gpu1, gpu2')),
      this.row('ssh.user', 'User', this.input('ssh.user', 'text', 'as in ~/.ssh/config')),
      this.row('ssh.port', 'Port', this.input('ssh.port', 'number', '22')),
      this.row('ssh.key_file', 'Key file (a path; or leave empty for ssh-agent)', this.input('ssh.key_file', 'text', '~/.ssh/id_ed25519')),
      this.row('ssh.shared_fs', 'Hosts share this file system', this.input('ssh.shared_fs', 'checkbox')));
    this.slurmBox = h('fieldset', { class: 'physviz-backend-settings', 'data-backend': 'slurm' },
      h('legend', {}, 'Slurm'),
      this.row('slurm.profile', 'Saved profile', slurmProfile),
      this.row('resources.partition', 'Partition', this.input('resources.partition', 'text', 'default partition')),
      this.row('resources.account', 'Account', this.input('resources.account', 'text')),
      this.row('resources.time_limit', 'Time limit (minutes or HH:MM:SS)', this.input('resources.time_limit', 'text', '01:00:00')),
      this.row('slurm.login', 'Login node (empty: sbatch on this server)', this.input('slurm.login', 'text')));
    const dataButtons = h('span', { class: 'physviz-pick' });
    if (options.docManager) {
      const file = h('button', { type: 'button', class: 'jp-mod-styled physviz-pick-file' }, 'File…');
      file.onclick = () => void this.pick(false);
      const folder = h('button', { type: 'button', class: 'jp-mod-styled physviz-pick-folder' }, 'Folder…');
      folder.onclick = () => void this.pick(true);
      dataButtons.append(file, folder);
    }
    const submit = h('button', { type: 'submit', class: 'jp-mod-styled jp-mod-accept physviz-submit' }, 'Submit fine-tune');
    form.append(
      h('h2', {}, 'Fine-tune a physviz model'),
      this.general,
      h('fieldset', {}, h('legend', {}, 'Job'),
        this.row('name', 'Job name (letters, digits, spaces, . _ - + = @ : ,)', this.input('name', 'text', 'fine-tune'))),
      h('fieldset', {}, h('legend', {}, 'Data and model'),
        this.row('data', 'Data: a Well HDF5 file or dataset folder (path on the server)', this.input('data', 'text', 'data/my_dataset'), dataButtons),
        this.row('model', 'Base model: "bundled", or an MPP / Walrus / physviz checkpoint path', model),
        this.row('steps', 'Steps', this.input('steps', 'number', '20')),
        this.row('lr', 'Learning rate', this.input('lr', 'text', '1e-4')),
        this.row('freeze', 'Freeze', this.choice('freeze', [['none', 'none: train everything'],
          ['processor', 'processor: freeze the space-time blocks'], ['middle', 'middle: only embedding and decoder head']]))),
      h('fieldset', {}, h('legend', {}, 'Where it runs'),
        this.row('backend', 'Backend', backend), this.sshBox, this.slurmBox,
        this.row('resources.nodes', 'Nodes', this.input('resources.nodes', 'number', '1')),
        this.row('resources.procs_per_node', 'Processes per node (0: one per GPU)', this.input('resources.procs_per_node', 'number', '1')),
        this.row('resources.gpus_per_node', 'GPUs per node', this.input('resources.gpus_per_node', 'number', '0'))),
      h('fieldset', {}, h('legend', {}, 'Environment'),
        this.row('environment.venv', 'Virtual environment on the hosts (optional)', this.input('environment.venv', 'text')),
        this.row('environment.prologue', 'Environment prologue — shell code, run as written before the job (the only text a shell runs)', prologue)),
      h('div', { class: 'physviz-form-actions' }, submit),
      this.result
    );
    (this.inputs.get('steps') as HTMLInputElement).value = '20';
    (this.inputs.get('lr') as HTMLInputElement).value = '1e-4';
    (this.inputs.get('resources.nodes') as HTMLInputElement).value = '1';
    (this.inputs.get('resources.procs_per_node') as HTMLInputElement).value = '1';
    (this.inputs.get('resources.gpus_per_node') as HTMLInputElement).value = '0';
    this.node.append(form);
    this.fillProfiles();
    this.showBackend();
  }

  /** Re-read the saved profiles and default backend (after the settings change). */
  fillProfiles(): void {
    const fill = (name: string, names: string[]) => {
      const s = this.inputs.get(name) as HTMLSelectElement;
      s.replaceChildren(h('option', { value: '' }, names.length ? '(none)' : '(none saved in the settings)'),
        ...names.map(n => h('option', { value: n }, n)));
    };
    fill('ssh.profile', this.options.sshProfiles().map(p => p.name));
    fill('slurm.profile', this.options.slurmProfiles().map(p => p.name));
  }

  private input(name: string, type: string, placeholder = ''): HTMLInputElement {
    const attrs: Record<string, string> = { name, type, class: 'jp-mod-styled', placeholder };
    if (type === 'number') {
      attrs.min = '0';
    }
    if (type === 'checkbox') {
      delete attrs.class;
    }
    const el = h('input', attrs);
    this.inputs.set(name, el);
    return el;
  }

  private choice(name: string, options: Array<[string, string]>): HTMLSelectElement {
    const s = h('select', { name, class: 'jp-mod-styled' });
    for (const [v, l] of options) {
      s.append(h('option', { value: v }, l));
    }
    this.inputs.set(name, s);
    return s;
  }

  private row(field: string, label: string, ...controls: Node[]): HTMLDivElement {
    const id = `physviz-${field.replace(/\W/g, '-')}-${Private.count++}`;
    const first = controls[0] as HTMLElement;
    first.id = id;
    return h('div', { class: 'physviz-row', 'data-field': field },
      h('label', { for: id }, label),
      h('div', { class: 'physviz-control' }, ...controls),
      h('div', { class: 'physviz-field-error', 'data-error-for': field, role: 'alert' }));
  }

  private value(name: string): string {
    const el = this.inputs.get(name);
    return el ? el.value.trim() : '';
  }

  private showBackend(): void {
    const b = this.value('backend');
    this.sshBox.hidden = b !== 'ssh';
    this.slurmBox.hidden = b !== 'slurm';
  }

  private applySSHProfile(): void {
    const p = this.options.sshProfiles().find(x => x.name === this.value('ssh.profile'));
    if (!p) {
      return;
    }
    const hosts = p.hosts.map(x => (typeof x === 'string' ? x : x.host));
    const first = p.hosts.find(x => typeof x !== 'string') as { port?: number; user?: string; key_file?: string } | undefined;
    (this.inputs.get('ssh.hosts') as HTMLInputElement).value = hosts.join(', ');
    (this.inputs.get('ssh.user') as HTMLInputElement).value = first?.user ?? '';
    (this.inputs.get('ssh.port') as HTMLInputElement).value = first?.port ? String(first.port) : '';
    (this.inputs.get('ssh.key_file') as HTMLInputElement).value = first?.key_file ?? '';
    (this.inputs.get('ssh.shared_fs') as HTMLInputElement).checked = !!p.shared_fs;
  }

  private applySlurmProfile(): void {
    const p = this.options.slurmProfiles().find(x => x.name === this.value('slurm.profile'));
    if (!p) {
      return;
    }
    (this.inputs.get('resources.partition') as HTMLInputElement).value = p.partition ?? '';
    (this.inputs.get('resources.account') as HTMLInputElement).value = p.account ?? '';
    (this.inputs.get('resources.time_limit') as HTMLInputElement).value = p.time_limit ?? '';
    (this.inputs.get('slurm.login') as HTMLInputElement).value = p.login ?? '';
  }

  private async pick(folder: boolean): Promise<void> {
    const manager = this.options.docManager!;
    const result = folder
      ? await FileDialog.getExistingDirectory({ manager, title: 'Data folder' })
      : await FileDialog.getOpenFiles({ manager, title: 'Data file (Well HDF5)' });
    if (result.button.accept && result.value && result.value.length) {
      (this.inputs.get('data') as HTMLInputElement).value = result.value[0].path;
    }
  }

  /** The JSON the submit route reads (physviz/server/submit.py). */
  formData(): Record<string, unknown> {
    const num = (name: string) => {
      const v = this.value(name);
      const n = Number(v);
      return v === '' ? null : Number.isFinite(n) ? n : v; // text that is no number: the server names the field
    };
    const backend = this.value('backend');
    const data: Record<string, unknown> = {
      name: this.value('name'),
      data: this.value('data'),
      model: this.value('model'),
      steps: num('steps'),
      lr: num('lr'),
      freeze: this.value('freeze'),
      backend,
      resources: {
        nodes: num('resources.nodes'),
        procs_per_node: num('resources.procs_per_node'),
        gpus_per_node: num('resources.gpus_per_node')
      },
      environment: { venv: this.value('environment.venv'), prologue: this.inputs.get('environment.prologue')!.value }
    };
    if (backend === 'ssh') {
      const port = num('ssh.port');
      const user = this.value('ssh.user');
      const key = this.value('ssh.key_file');
      data.ssh = {
        hosts: this.value('ssh.hosts')
          .split(/[\s,]+/)
          .filter(x => x)
          .map(host => ({ host, ...(port ? { port } : {}), ...(user ? { user } : {}), ...(key ? { key_file: key } : {}) })),
        shared_fs: (this.inputs.get('ssh.shared_fs') as HTMLInputElement).checked
      };
    }
    if (backend === 'slurm') {
      Object.assign(data.resources as object, {
        partition: this.value('resources.partition'),
        account: this.value('resources.account'),
        time_limit: this.value('resources.time_limit')
      });
      data.slurm = { login: this.value('slurm.login') };
    }
    return data;
  }

  private showErrors(errors: Record<string, string>): void {
    for (const el of this.node.querySelectorAll('.physviz-field-error')) {
      el.textContent = '';
    }
    for (const row of this.node.querySelectorAll('.physviz-row.jp-mod-error')) {
      row.classList.remove('jp-mod-error');
    }
    for (const [field, message] of Object.entries(errors)) {
      let target = this.node.querySelector(`.physviz-field-error[data-error-for="${CSS.escape(field)}"]`);
      if (!target) {
        const prefix = field.split(/[.[]/)[0];
        target = this.node.querySelector(`.physviz-field-error[data-error-for="${CSS.escape(prefix)}"]`) || this.general;
      }
      target.textContent = (target.textContent ? target.textContent + ' ' : '') + message;
      target.closest('.physviz-row')?.classList.add('jp-mod-error');
    }
  }

  async submit(): Promise<void> {
    const button = this.node.querySelector('.physviz-submit') as HTMLButtonElement;
    button.disabled = true;
    this.result.textContent = 'Submitting…';
    this.result.className = 'physviz-result';
    try {
      const job = await submitJob(this.formData());
      this.showErrors({});
      this.result.textContent = `Submitted job "${job.name}" (${job.id}): ${job.status}. Follow it in the physviz jobs panel.`;
      this.result.classList.add('physviz-ok');
      this.result.dataset.jobId = job.id;
      this.options.submitted(job);
    } catch (err) {
      if (err instanceof FormError) {
        this.showErrors(err.errors);
        this.result.textContent = 'Nothing was submitted: fix the fields marked above.';
      } else {
        this.showErrors({ form: (err as Error).message });
        this.result.textContent = 'Nothing was submitted.';
      }
      this.result.classList.add('physviz-refused');
    } finally {
      button.disabled = false;
    }
  }

  private inputs = new Map<string, Input>();
  private general: HTMLDivElement;
  private result: HTMLDivElement;
  private sshBox: HTMLFieldSetElement;
  private slurmBox: HTMLFieldSetElement;
}

namespace Private {
  export let count = 0;
}
