// Stand-in for style-mod (which CodeMirror uses to put its themes in a <style> element at run
// time; the app's Content-Security-Policy, style-src 'self', refuses that). Every StyleModule is
// created as usual, so class names and rules are CodeMirror's own, and recorded; mount() adds
// nothing to the page. make-css.js writes the recorded rules to codemirror-sql.css, which the
// page links like any stylesheet.
import { StyleModule as Original } from "./node_modules/style-mod/src/style-mod.js";

export const modules = [];

export class StyleModule extends Original {
  constructor(spec, options) {
    super(spec, options);
    modules.push(this);
  }

  static mount() {}
}
