// The base models this server has loaded: those of its most recent jobs (the engine keeps their networks cached
// within its memory budget), most recent first. The pool routes jobs for these models here first (affinity).
export class LoadedModels {
  private readonly ids: string[] = [];

  constructor(private readonly max = 2) {}

  /** Marks `id` as the most recently used model. */
  use(id: string): void {
    const i = this.ids.indexOf(id);
    if (i >= 0) this.ids.splice(i, 1);
    this.ids.unshift(id);
    this.ids.length = Math.min(this.ids.length, this.max);
  }

  list(): string[] {
    return [...this.ids];
  }
}
