// Where a server (a storm's live view or a trace's replays) can be reached,
// in the forms its users print and connect to.

export class ServedAt {
  readonly host: string;
  readonly port: number;
  /** http://HOST:PORT/ */
  readonly url: string;
  /** The page with the control token in its fragment (never sent over the network by the browser): print this. */
  readonly pageUrl: string;
  /** ws://HOST:PORT/feed (add ?format=json for JSON). */
  readonly feedUrl: string;
  readonly token: string;

  /** A server listening at base (http://HOST:PORT, as FeedServer.baseUrl gives it). */
  constructor(at: { host: string; port: number; baseUrl: string; token: string }) {
    const base = at.baseUrl;
    this.host = at.host;
    this.port = at.port;
    this.url = `${base}/`;
    this.pageUrl = `${base}/#token=${at.token}`;
    this.feedUrl = `${base.replace(/^http/, "ws")}/feed`;
    this.token = at.token;
  }
}
