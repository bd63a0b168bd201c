// confirm.js: the confirmation dialog of actions that change a device
// (<dialog> opened modally: focus stays inside, Escape cancels).

// Resolves to {ok: true, reason} or {ok: false}.
export function confirmAction({title, text, ok, withReason}) {
  const dlg = document.getElementById('confirm');
  const form = document.getElementById('confirm-form');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  const okButton = document.getElementById('confirm-ok');
  okButton.textContent = ok;
  form.querySelector('.field.reason')?.remove();
  let reason = null;
  if (withReason) {
    reason = document.createElement('input');
    reason.id = 'confirm-reason';
    reason.maxLength = 200;
    reason.autocomplete = 'off';
    const label = document.createElement('label');
    label.htmlFor = reason.id;
    label.textContent = 'Reason (recorded in the audit log, optional)';
    const field = document.createElement('div');
    field.className = 'field reason';
    field.append(label, reason);
    form.querySelector('.buttons').before(field);
  }
  return new Promise((resolve) => {
    dlg.returnValue = 'cancel';
    dlg.addEventListener('close', () => {
      resolve(dlg.returnValue === 'ok'
        ? {ok: true, reason: reason ? reason.value.trim() : ''} : {ok: false});
    }, {once: true});
    dlg.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}
