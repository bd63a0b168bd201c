// confirm.js: the confirmation dialog of actions that change a device
// (<dialog> opened modally: focus stays inside, Escape cancels).

// Resolves to true when the operator confirmed.
export function confirmAction({title, text, ok}) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = ok;
  return new Promise((resolve) => {
    dlg.returnValue = 'cancel';
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), {once: true});
    dlg.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}
