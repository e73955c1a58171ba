// Progressive enhancement of the shop's cart forms.
//
// Without JavaScript every form posts to the shop and comes back with a 303 redirect.
// With it, the same forms call flask-cart's JSON routes (CART_URL_PREFIX, "/cart" by
// default) with the CSRF token in the X-CSRFToken header, and the page is updated in
// place from the cart the route answers with: the header badge, the cart table, totals.
"use strict";

(function () {
  const body = document.body;
  const api = (body.dataset.cartApi || "/cart").replace(/\/$/, "");
  const tokenMeta = document.querySelector('meta[name="csrf-token"]');
  const csrfToken = tokenMeta ? tokenMeta.content : "";
  const maxQuantity = 999;

  document.documentElement.classList.add("js");

  class CartRequestError extends Error {
    constructor(message, status, fallback, code) {
      super(message);
      this.status = status;
      this.fallback = fallback; // true: the JSON route is missing, post the form instead
      this.code = code || "";
    }
  }

  // One Idempotency-Key per user action: a retry of the same action is applied once.
  function newActionKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  }

  const RETRY_DELAY_MS = 600;

  async function callCart(method, path, payload, url) {
    const options = {
      method,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken },
    };
    if (method !== "GET") {
      options.headers["Idempotency-Key"] = newActionKey();
    }
    if (payload !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(payload);
    }
    let response;
    // A 503 or a lost connection may or may not have changed the cart: one retry with the
    // same key is safe, since the store applies that key's change at most once.
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        response = await fetch(url || api + path, options);
      } catch (error) {
        response = null;
      }
      if (response && response.status !== 503) break;
      if (attempt === 0) await new Promise((done) => setTimeout(done, RETRY_DELAY_MS));
    }
    if (!response) {
      throw new CartRequestError("The shop could not be reached: check your connection.", 0);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (response.ok && data && Array.isArray(data.items)) {
      return data;
    }
    const message =
      (data && data.error && data.error.message) ||
      `Your cart could not be changed (HTTP ${response.status}).`;
    const missing = (response.status === 404 || response.status === 405) && !(data && data.error);
    const code = data && data.error ? data.error.code : "";
    throw new CartRequestError(message, response.status, missing, code);
  }

  function units(quantity) {
    return quantity === 1 ? "1 item" : `${quantity} items`;
  }

  const TOAST_MS = 8000;
  let toastTimer = null;

  // A message in the sticky region at the top of the window (in view wherever the page is
  // scrolled); after an add it links to the cart and says what it holds. Good news fades
  // after a while; errors stay until closed.
  function flash(message, kind, cart) {
    const box = document.getElementById("flashes");
    if (!box) return;
    const item = document.createElement("p");
    item.className = `flash flash-${kind}`;
    item.setAttribute("role", kind === "error" ? "alert" : "status");
    item.append(document.createTextNode(message));
    if (cart && box.dataset.cartUrl) {
      const link = document.createElement("a");
      link.className = "flash-cart";
      link.href = box.dataset.cartUrl;
      link.textContent = `View cart (${units(cart.quantity)})`;
      item.append(" ", link);
    }
    closable(item);
    box.replaceChildren(item);
    // Good news goes by itself after a while; an error stays until closed.
    if (toastTimer) clearTimeout(toastTimer);
    toastTimer = kind === "error" ? null : setTimeout(() => item.remove(), TOAST_MS);
  }

  function closable(item) {
    const close = document.createElement("button");
    close.type = "button";
    close.className = "flash-close";
    close.setAttribute("aria-label", "Close this message");
    close.addEventListener("click", () => item.remove());
    item.append(close);
  }

  // The messages the page came with (after a form post or a followed link) can be closed.
  document.querySelectorAll("#flashes > .flash").forEach(closable);

  // The shop's words for flask-cart's refusals, by error code.
  const SHOP_WORDS = {
    quantity_limit: () => `You can have at most ${maxQuantity} of one item`,
    line_limit: () => "Your cart cannot hold more different products",
    unknown_product: () => "That product is not sold here any more",
    store_unavailable: () => "Your cart is unavailable for a moment: please try again in a few seconds",
  };

  // flask-cart names products by id ("only 3 of 'wool-socks' in stock"): use their names,
  // and never show an id.
  function readable(message, productId, name, code) {
    if (SHOP_WORDS[code]) return SHOP_WORDS[code]();
    let text = String(message);
    if (productId && name) text = text.split(`'${productId}'`).join(name);
    if (/'[A-Za-z0-9_.:-]+'/.test(text)) return "That product is not sold here any more";
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function formatMoney(value) {
    const text = String(value);
    const negative = text.startsWith("-");
    const [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const cents = (fraction + "00").slice(0, 2);
    const currency = body.dataset.currency || "USD";
    const amount = `${grouped}.${cents}`;
    const shown = currency === "USD" ? `$${amount}` : `${amount} ${currency}`;
    return negative ? `-${shown}` : shown;
  }

  // A line's own message under its quantity box ("" hides it).
  function lineMessage(form, text) {
    const note = form.querySelector("[data-line-message]");
    const input = form.querySelector('input[name="quantity"]');
    if (note) {
      note.textContent = text;
      note.hidden = !text;
    }
    if (input) {
      if (text) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  }

  // A refused quantity: put back what the store holds (read from the store, not the
  // browser's copy of the cart) and say why, on the line itself.
  async function refusedUpdate(form, message) {
    let cart = null;
    try {
      cart = await callCart("GET", "", undefined, body.dataset.freshCart);
    } catch (error) {
      cart = null;
    }
    const [productId, name] = productOf(form);
    const item = cart ? cart.items.find((line) => line.product_id === productId) : null;
    const input = form.querySelector('input[name="quantity"]');
    if (cart && !item) {
      // Gone from the store's cart: removed on another device. The row goes with it.
      flash(`${name || "That product"} was removed on another device.`, "info");
      showCart(cart);
      return;
    }
    if (cart) showCart(cart);
    if (item && input) input.value = String(item.quantity);
    const kept = item ? `: your cart still has ${item.quantity}.` : ".";
    lineMessage(form, `${message.replace(/\.$/, "")}${kept}`);
  }

  function showCart(cart) {
    document.querySelectorAll("[data-cart-badge]").forEach((badge) => {
      badge.classList.remove("badge-unavailable");
      badge.textContent = String(cart.quantity);
      badge.classList.remove("bump");
      void badge.offsetWidth; // restart the animation
      badge.classList.add("bump");
    });
    const table = document.querySelector("[data-cart-full]");
    if (!table) return;
    const items = new Map(cart.items.map((item) => [item.product_id, item]));
    const shown = new Set();
    document.querySelectorAll("tr[data-line]").forEach((row) => {
      const item = items.get(row.dataset.line);
      if (!item) {
        row.remove();
        return;
      }
      shown.add(item.product_id);
      const input = row.querySelector('input[name="quantity"]');
      if (input && document.activeElement !== input) input.value = String(item.quantity);
      const total = row.querySelector('[data-field="line-total"]');
      if (total) total.textContent = formatMoney(item.line_total);
    });
    if (cart.items.some((item) => !shown.has(item.product_id))) {
      window.location.reload(); // a line added elsewhere: draw the page anew
      return;
    }
    document.querySelectorAll("[data-cart-total]").forEach((el) => {
      el.textContent = formatMoney(cart.total_cost);
    });
    document.querySelectorAll("[data-cart-quantity]").forEach((el) => {
      el.textContent = String(cart.quantity);
    });
    document.querySelectorAll("[data-cart-noun]").forEach((el) => {
      el.textContent = cart.quantity === 1 ? "item" : "items";
    });
    const empty = cart.items.length === 0;
    table.hidden = empty;
    const emptyNote = document.querySelector("[data-cart-empty]");
    if (emptyNote) emptyNote.hidden = !empty;
  }

  function readQuantity(form, minimum) {
    const field = form.querySelector('input[name="quantity"]');
    const raw = field ? field.value.trim() : "1";
    if (!/^\d+$/.test(raw) || Number(raw) < minimum || Number(raw) > maxQuantity) {
      throw new CartRequestError(`Choose a quantity from ${minimum} to ${maxQuantity}.`, 400);
    }
    return Number(raw);
  }

  function lineOf(form) {
    const row = form.closest("tr[data-line]");
    return row ? row.dataset.line : "";
  }

  // The product a form is about: [id, name].
  function productOf(form) {
    const row = form.closest("tr[data-line]");
    if (row) return [row.dataset.line, row.dataset.name || ""];
    const field = form.querySelector('input[name="product_id"]');
    return [field ? field.value : "", form.dataset.name || ""];
  }

  const actions = {
    add: async (form) => {
      const quantity = readQuantity(form, 1);
      const productId = form.querySelector('input[name="product_id"]').value;
      const cart = await callCart("POST", "/items", { product_id: productId, quantity });
      flash(`Added ${quantity} × ${form.dataset.name || "it"} to your cart.`, "success", cart);
      return cart;
    },
    update: async (form) => {
      const quantity = readQuantity(form, 0);
      const path = `/items/${encodeURIComponent(lineOf(form))}`;
      const cart = await callCart("PATCH", path, { quantity });
      lineMessage(form, "");
      const name = productOf(form)[1] || "That product";
      flash(quantity === 0 ? `Removed ${name} from your cart.` : `${name}: quantity set to ${quantity}.`, quantity === 0 ? "info" : "success");
      return cart;
    },
    remove: async (form) => {
      const cart = await callCart("DELETE", `/items/${encodeURIComponent(lineOf(form))}`);
      const name = productOf(form)[1];
      flash(name ? `Removed ${name} from your cart.` : "Removed from your cart.", "info");
      return cart;
    },
    clear: async () => {
      const cart = await callCart("DELETE", "");
      flash("Your cart is empty.", "info");
      return cart;
    },
  };

  function actionOf(form) {
    for (const name of Object.keys(actions)) {
      if (form.hasAttribute(`data-cart-${name}`)) return name;
    }
    return null;
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    const action = actionOf(form);
    if (!action) return;
    event.preventDefault();
    if (form.classList.contains("busy")) return;
    form.classList.add("busy");
    try {
      showCart(await actions[action](form));
    } catch (error) {
      if (error instanceof CartRequestError && error.fallback) {
        form.submit(); // the JSON route is not there: the plain form still works
        return;
      }
      const [productId, name] = productOf(form);
      const text = error.message || "Your cart could not be changed.";
      const message = readable(text, productId, name, error.code);
      flash(message, "error");
      if (action === "update" && error.status !== 0) await refusedUpdate(form, message);
    } finally {
      form.classList.remove("busy");
    }
  });

  // On the cart page a changed quantity saves itself.
  document.addEventListener("change", (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.name !== "quantity") return;
    const form = input.closest("form[data-cart-update]");
    if (form) form.requestSubmit();
  });
})();
