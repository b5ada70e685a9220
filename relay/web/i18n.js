// The viewer's words in the person's language. The table is relay/web/messages.json, which the
// relay puts into the page's configuration; the language is the first of the browser's
// languages that the table has (English otherwise).

export function chooseLanguage(table, languages) {
  for (const tag of languages || []) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (Object.hasOwn(table, base)) return base;
  }
  return "en";
}

export function translator(table, lang) {
  const words = table[lang] || {};
  const fallback = table.en || {};
  return (key, vars = {}) => String(words[key] ?? fallback[key] ?? key)
    .replace(/\{(\w+)\}/g, (whole, name) => (Object.hasOwn(vars, name) ? String(vars[name]) : whole));
}

// data-i18n: the text; data-i18n-label: the accessible name (and, on buttons, the tooltip);
// data-i18n-title: the tooltip; data-i18n-ph: the placeholder.
export function translatePage(root, t) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
    if (el.tagName === "BUTTON") el.title = t(el.dataset.i18nLabel);
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll("[data-i18n-ph]")) el.placeholder = t(el.dataset.i18nPh);
}

export function formatSize(bytes, lang) {
  const mb = bytes / (1024 * 1024);
  const number = new Intl.NumberFormat(lang, { maximumFractionDigits: mb < 10 ? 1 : 0 });
  return mb >= 1 ? `${number.format(mb)} MB` : `${number.format(Math.max(1, bytes / 1024))} KB`;
}
