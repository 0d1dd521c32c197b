/** What the datasets catalogue answers (through this server's handlers), and what a view may ask of the panel. */

export interface IDatasetSummary {
  name: string;
  title: string;
  description: string;
  tags: string[];
  format: string;
  rows: number | null;
  size_bytes: number | null;
  version: string;
  steward: string;
  request?: { id: number; status: string; comment: string | null } | null;
}

export interface IColumn {
  name: string;
  type: string;
}

export interface IFile {
  path: string;
  format: string;
  rows: number | null;
  size_bytes: number | null;
  columns?: IColumn[];
}

/** The panel, as its views see it: where a link or a button leads. */
export interface IDatasetsNavigator {
  showList(): Promise<void>;
  showDataset(name: string, file?: string): Promise<void>;
  requestAccess(name: string): Promise<void>;
}
