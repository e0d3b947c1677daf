import type {} from "@fastify/cookie";
import type { FastifyRequest } from "fastify";
import { isLocale, type Locale, pickLocale, type Translator, translator } from "./i18n.js";

export const LANG_COOKIE = "churnops_lang";

/** `?lang=` (the page's switch) first, then the language cookie, then Accept-Language. */
export function requestLocale(request: FastifyRequest): Locale {
  const asked = (request.query as Record<string, unknown> | undefined)?.lang;
  return isLocale(asked) ? asked : pickLocale(request.cookies[LANG_COOKIE], request.headers["accept-language"]);
}

export function requestTranslator(request: FastifyRequest): Translator {
  return translator(requestLocale(request));
}
