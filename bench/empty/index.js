// The platform's limit: a Worker that answers 200 at once. Every benchmark ratio compares to it.
export default {
  async fetch() {
    return new Response("{}", { headers: { "content-type": "application/json" } });
  },
};
