// physviz in JupyterLab: a Jobs panel in the left sidebar and a fine-tune form (Launcher card, command palette).
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { IJob } from './api';
import { FinetuneForm, ISSHProfile, ISlurmProfile } from './form';
import { JobsPanel } from './sidebar';

import iconSvg from '../style/icon.svg';

const PLUGIN_ID = 'physviz:plugin';

export const physvizIcon = new LabIcon({ name: 'physviz:icon', svgstr: iconSvg });

namespace CommandIDs {
  export const openForm = 'physviz:new-finetune';
  export const openJobs = 'physviz:show-jobs';
}

/** The Python lines that reattach to a job and load its fine-tuned model. */
export function reattachCode(job: IJob): string {
  const id = JSON.stringify(job.id);
  return [
    'import physviz, physviz.jobs',
    `job = physviz.jobs.get(${id})  # ${job.name.replace(/[\r\n]+/g, ' ')}`,
    'job.wait()  # until it ends (returns at once for a finished job)',
    'model = physviz.load_model(job.fetch() / "final.safetensors")  # its fine-tuned model',
    'model'
  ].join('\n');
}

interface ISettingsValues {
  refreshInterval: number;
  defaultBackend: string;
  sshProfiles: ISSHProfile[];
  slurmProfiles: ISlurmProfile[];
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'physviz jobs sidebar and fine-tune launcher.',
  autoStart: true,
  requires: [],
  optional: [ILayoutRestorer, ILauncher, ICommandPalette, ISettingRegistry, INotebookTracker, IDocumentManager],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    notebooks: INotebookTracker | null,
    docManager: IDocumentManager | null
  ) => {
    const values: ISettingsValues = { refreshInterval: 5, defaultBackend: 'local', sshProfiles: [], slurmProfiles: [] };
    const forms = new WidgetTracker<MainAreaWidget<FinetuneForm>>({ namespace: 'physviz-finetune' });

    const openInNotebook = async (job: IJob): Promise<void> => {
      let panel: NotebookPanel | null = notebooks?.currentWidget ?? null;
      if (!panel) {
        panel = (await app.commands.execute('notebook:create-new', { kernelName: 'physviz' })) as NotebookPanel;
        await panel.context.ready;
      } else {
        app.shell.activateById(panel.id);
      }
      const notebook = panel.content;
      if (notebook.widgets.length === 1 && !notebook.widgets[0].model.sharedModel.getSource()) {
        notebook.activeCellIndex = 0; // a fresh notebook: use its empty cell
      } else {
        notebook.activeCellIndex = notebook.widgets.length - 1;
        NotebookActions.insertBelow(notebook);
      }
      const cell = notebook.activeCell;
      if (cell) {
        if (cell.model.type !== 'code') {
          NotebookActions.changeCellType(notebook, 'code');
        }
        notebook.activeCell!.model.sharedModel.setSource(reattachCode(job));
      }
    };

    const panel = new JobsPanel({
      openForm: () => void app.commands.execute(CommandIDs.openForm),
      openInNotebook,
      refreshSeconds: () => values.refreshInterval
    });
    panel.title.icon = physvizIcon;
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 'physviz-jobs');

    app.commands.addCommand(CommandIDs.openJobs, {
      label: 'physviz: Show Jobs',
      caption: 'Show the physviz jobs panel',
      icon: physvizIcon,
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(CommandIDs.openForm, {
      label: args => (args.isLauncher ? 'Fine-tune' : 'physviz: New Fine-tune Job'),
      caption: 'Open the physviz fine-tune form',
      icon: physvizIcon,
      execute: () => {
        const content = new FinetuneForm({
          docManager,
          defaultBackend: () => values.defaultBackend,
          sshProfiles: () => values.sshProfiles,
          slurmProfiles: () => values.slurmProfiles,
          submitted: job => {
            app.shell.activateById(panel.id);
            void panel.refresh().then(() => panel.select(job.id));
          }
        });
        const widget = new MainAreaWidget({ content });
        widget.id = `physviz-finetune-${Date.now()}`;
        widget.title.label = 'Fine-tune';
        widget.title.icon = physvizIcon;
        widget.title.closable = true;
        void forms.add(widget);
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
        return widget;
      }
    });
    palette?.addItem({ command: CommandIDs.openForm, category: 'physviz' });
    palette?.addItem({ command: CommandIDs.openJobs, category: 'physviz' });
    launcher?.add({ command: CommandIDs.openForm, category: 'physviz', rank: 1, args: { isLauncher: true } });

    if (settingRegistry) {
      const load = (s: ISettingRegistry.ISettings) => {
        const c = s.composite as unknown as Partial<ISettingsValues>;
        values.refreshInterval = Number(c.refreshInterval) || 5;
        values.defaultBackend = c.defaultBackend || 'local';
        values.sshProfiles = c.sshProfiles || [];
        values.slurmProfiles = c.slurmProfiles || [];
        forms.forEach(w => w.content.fillProfiles());
      };
      settingRegistry
        .load(PLUGIN_ID)
        .then(s => {
          load(s);
          s.changed.connect(load);
        })
        .catch(reason => console.warn('physviz: settings not loaded', reason));
    }
    // Open forms come back after a reload (empty: a form keeps no values).
    void restorer?.restore(forms, { command: CommandIDs.openForm, name: widget => widget.id });
  }
};

export default plugin;
