/**
 * Values built on first use instead of at import: a library's zod schemas, JSON Schemas and tables
 * cost every process that imports it, used or not (`bottle run` imports many it does not use
 * before its sandbox starts). Kept here, with the errors every library already takes from this
 * package, so the libraries share one implementation.
 */

/** A builder that builds its value the first time it is called and returns the same one after. */
export function once<T>(build: () => T): () => T {
  let built = false;
  let value: T;
  return () => {
    if (!built) {
      value = build();
      built = true;
    }
    return value;
  };
}

/**
 * An object (an exported schema, a table) that stands for the one `build` returns, built when it
 * is first touched: any property read or write, `in`, `instanceof`, key listing, JSON.stringify.
 * The proxy's target becomes a copy of the built object's own properties and prototype, so it
 * answers as that object does; methods that close over the built object act on it.
 */
export function lazyObject<T extends object>(build: () => T): T {
  const target = {} as T;
  let ready = false;
  const ensure = (): T => {
    if (!ready) {
      const value = build();
      Object.setPrototypeOf(target, Object.getPrototypeOf(value));
      Object.defineProperties(target, Object.getOwnPropertyDescriptors(value));
      ready = true;
    }
    return target;
  };
  return new Proxy(target, {
    get: (_t, key, receiver) => Reflect.get(ensure(), key, receiver),
    set: (_t, key, value, receiver) => Reflect.set(ensure(), key, value, receiver),
    has: (_t, key) => Reflect.has(ensure(), key),
    ownKeys: () => Reflect.ownKeys(ensure()),
    getOwnPropertyDescriptor: (_t, key) => Reflect.getOwnPropertyDescriptor(ensure(), key),
    defineProperty: (_t, key, desc) => Reflect.defineProperty(ensure(), key, desc),
    deleteProperty: (_t, key) => Reflect.deleteProperty(ensure(), key),
    getPrototypeOf: () => Reflect.getPrototypeOf(ensure()),
    setPrototypeOf: (_t, proto) => Reflect.setPrototypeOf(ensure(), proto),
    isExtensible: () => Reflect.isExtensible(ensure()),
    preventExtensions: () => Reflect.preventExtensions(ensure()),
  });
}
