// Checkout: the submit button's handler (an agent's click must only reach it after consent).
(function () {
  var form = document.getElementById('checkout-form');
  var out = document.getElementById('order-result');
  var orders = 0;
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    orders += 1;
    var name = document.getElementById('name').value.trim();
    out.hidden = false;
    out.textContent = 'Order placed' + (name ? ' for ' + name : '') + '. Confirmation #AO-' + (48210 + orders) + '.';
    document.documentElement.setAttribute('data-orders', String(orders));
  });
})();
