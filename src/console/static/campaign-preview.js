// The campaign builder's live preview: as the form changes, ask the server what the plan would select and show
// its answer (server-rendered HTML) in the preview region. Nothing is planned; without script the form's own
// Preview button does the same with a round trip.
const form = document.querySelector("form.builder");
const region = document.getElementById("preview");
if (form instanceof HTMLFormElement && region !== null) {
  let timer = 0;
  let latest = 0;
  const refresh = async () => {
    const asked = ++latest;
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (key !== "_csrf" && key !== "step" && typeof value === "string") params.append(key, value);
    }
    region.setAttribute("aria-busy", "true");
    try {
      const res = await fetch(`${form.dataset.preview}?${params.toString()}`, { credentials: "same-origin", headers: { accept: "text/html" } });
      const html = await res.text();
      // An answer to an older question must not overwrite a newer one.
      if (asked === latest) region.innerHTML = html;
    } finally {
      if (asked === latest) region.removeAttribute("aria-busy");
    }
  };
  const soon = () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 250);
  };
  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  refresh();
}
