// The long catalogue: 200 products, always the same ones (a deterministic generator, so two
// browsers render identical pages).
(function () {
  var list = document.getElementById('catalog');
  if (!list) return;
  var kinds = ['Tent', 'Sleeping bag', 'Pack', 'Boots', 'Jacket', 'Stove', 'Headlamp', 'Bottle', 'Poles', 'Map case'];
  var adjectives = ['Alpine', 'Cedar', 'Granite', 'Harbor', 'Juniper', 'Kestrel', 'Lupine', 'Meadow', 'Nimbus', 'Osprey', 'Pine', 'Quartz', 'Raven', 'Sierra', 'Tundra', 'Willow', 'Yarrow', 'Zephyr', 'Basalt', 'Fjord'];
  var cats = ['Shelter', 'Sleep', 'Carry', 'Footwear', 'Clothing', 'Kitchen', 'Light', 'Water', 'Walking', 'Navigation'];
  var colours = ['#1f6f4a', '#f29a2e', '#3b6e93', '#c0443c', '#7a4a2a', '#5d8f76', '#8a6a1a', '#6b5b95', '#2f2a26', '#d98c8c'];
  var seed = 42;
  function rnd() {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  }
  var frag = document.createDocumentFragment();
  for (var i = 0; i < 200; i++) {
    var k = i % kinds.length;
    var li = document.createElement('li');
    li.setAttribute('data-sku', 'AO-' + String(1000 + i));
    var stock = Math.floor(rnd() * 40);
    var price = (9 + Math.floor(rnd() * 300)) + '.' + (rnd() < 0.5 ? '00' : '95');
    li.innerHTML =
      '<span class="swatch" style="background:' + colours[(i * 7) % colours.length] + '"></span>' +
      '<span><span class="name">' + adjectives[i % adjectives.length] + ' ' + kinds[k] + ' ' + (Math.floor(i / 20) + 1) + '</span><br><span class="sku">AO-' + (1000 + i) + '</span></span>' +
      '<span class="cat">' + cats[k] + '</span>' +
      '<span class="stock ' + (stock < 5 ? 'low' : 'ok') + '">' + (stock < 5 ? 'Only ' + stock + ' left' : 'In stock') + '</span>' +
      '<span class="price">$' + price + '</span>';
    frag.appendChild(li);
  }
  list.appendChild(frag);
})();
