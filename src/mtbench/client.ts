/** A minimal OpenAI-compatible chat client for the judge: temperature 0, retries with backoff. */

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatClientOptions {
  /** Base URL, e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1. */
  baseUrl: string;
  model: string;
  /** Sent as a bearer token when set; never logged (error texts are scrubbed of it). */
  apiKey?: string;
  timeoutMs: number;
  maxRetries: number;
  retryBaseMs: number;
  maxTokens?: number;
}

/** A request that failed for good: `retriable` says whether retrying later can help (429/5xx/timeouts). */
export class JudgeRequestError extends Error {
  constructor(message: string, readonly retriable: boolean, readonly status?: number) {
    super(message);
    this.name = 'JudgeRequestError';
  }
}

const MAX_BACKOFF_MS = 60_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ChatClient {
  private readonly url: string;
  /** Whether the server has sent any HTTP reply yet. */
  private answered = false;
  constructor(private readonly opts: ChatClientOptions) {
    this.url = opts.baseUrl.replace(/\/+$/, '') + '/chat/completions';
  }

  private scrub(text: string): string {
    const key = this.opts.apiKey;
    return key ? text.split(key).join('<OPENAI_API_KEY>') : text;
  }

  /** One attempt; throws JudgeRequestError. */
  private async once(messages: ChatMessage[]): Promise<string> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;
    const body = JSON.stringify({ model: this.opts.model, messages, n: 1, temperature: 0, max_tokens: this.opts.maxTokens ?? 2048 });
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.opts.timeoutMs) });
      text = await res.text();
    } catch (e) {
      const err = e as Error;
      const timedOut = err.name === 'TimeoutError' || err.name === 'AbortError';
      const cause = (err as { cause?: Error & { code?: string } }).cause;
      const why = timedOut ? `no reply within ${this.opts.timeoutMs} ms` : `${err.message}${cause ? ` (${cause.message})` : ''}`;
      // Nothing listening or no such host before the first reply is a wrong --judge-url, not a
      // hiccup: fail at once instead of backing off for minutes. Once the server has answered,
      // the same errors are retried (it may be restarting).
      const wrongUrl = !this.answered && (cause?.code === 'ECONNREFUSED' || cause?.code === 'ENOTFOUND');
      throw new JudgeRequestError(this.scrub(`${this.url}: ${why}`), !wrongUrl);
    }
    this.answered = true;
    if (!res.ok) {
      const retriable = res.status === 429 || res.status === 408 || res.status >= 500;
      const e = new JudgeRequestError(this.scrub(`${this.url}: HTTP ${res.status}: ${text.slice(0, 300)}`), retriable, res.status);
      (e as JudgeRequestError & { retryAfterMs?: number }).retryAfterMs = retryAfter(res.headers.get('retry-after'));
      throw e;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new JudgeRequestError(this.scrub(`${this.url}: the reply is not JSON: ${text.slice(0, 200)}`), false);
    }
    const choice = (parsed as { choices?: { message?: { content?: unknown } }[] }).choices?.[0];
    const content = choice?.message?.content;
    // A null content (e.g. a content filter) is an empty judgment: it gets -1 / an error verdict, counted.
    if (content === null) return '';
    if (typeof content !== 'string') throw new JudgeRequestError(this.scrub(`${this.url}: the reply has no choices[0].message.content: ${text.slice(0, 200)}`), false);
    return content;
  }

  /** The judge's reply; retries 429, 408, 5xx, timeouts and network errors with exponential backoff. */
  async complete(messages: ChatMessage[]): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once(messages);
      } catch (e) {
        const err = e as JudgeRequestError & { retryAfterMs?: number };
        if (!err.retriable || attempt >= this.opts.maxRetries) {
          if (err.retriable) err.message += ` (gave up after ${attempt + 1} attempts)`;
          throw err;
        }
        const backoff = Math.min(this.opts.retryBaseMs * 2 ** attempt, MAX_BACKOFF_MS);
        // Jitter spreads the retries of parallel requests that failed together.
        await sleep(err.retryAfterMs ?? backoff * (0.5 + Math.random() * 0.5));
      }
    }
  }
}

function retryAfter(h: string | null): number | undefined {
  if (!h) return undefined;
  const s = Number(h);
  if (Number.isFinite(s) && s >= 0) return Math.min(s * 1000, MAX_BACKOFF_MS * 2);
  const t = Date.parse(h);
  return Number.isNaN(t) ? undefined : Math.min(Math.max(0, t - Date.now()), MAX_BACKOFF_MS * 2);
}
