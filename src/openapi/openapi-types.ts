/**
 * The shapes of the OpenAPI 3.1 document this service serves (openapi-document.ts), as far as it
 * uses them. Typed, so that a builder cannot emit a keyword the contract test
 * (`tests/integration/openapi.test.ts`) and the clients reading the document do not expect.
 *
 * A JSON Schema (draft 2020-12, OpenAPI 3.1's dialect): only the keywords this document uses.
 */
export interface JsonSchema {
  readonly $ref?: string;
  readonly type?: 'object' | 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'null';
  readonly description?: string;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | JsonSchema;
  readonly items?: JsonSchema;
  readonly enum?: readonly (string | number)[];
  readonly const?: string | number | boolean;
  readonly format?: string;
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly default?: string | number | boolean;
  readonly allOf?: readonly JsonSchema[];
  readonly examples?: readonly unknown[];
}

export interface OpenApiReference {
  readonly $ref: string;
  readonly description?: string;
}

export interface OpenApiHeader {
  readonly description?: string;
  readonly required?: boolean;
  readonly schema: JsonSchema;
}

export interface OpenApiMediaType {
  readonly schema: JsonSchema;
  readonly example?: unknown;
}

export interface OpenApiResponse {
  readonly description: string;
  readonly headers?: Readonly<Record<string, OpenApiHeader | OpenApiReference>>;
  readonly content?: Readonly<Record<string, OpenApiMediaType>>;
}

export interface OpenApiParameter {
  readonly name: string;
  readonly in: 'query' | 'header' | 'path' | 'cookie';
  readonly description?: string;
  readonly required?: boolean;
  readonly schema: JsonSchema;
  readonly example?: unknown;
}

export interface OpenApiRequestBody {
  readonly description?: string;
  readonly required?: boolean;
  readonly content: Readonly<Record<string, OpenApiMediaType>>;
}

export type OpenApiSecurityRequirement = Readonly<Record<string, readonly string[]>>;

export interface OpenApiOperation {
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags?: readonly string[];
  readonly parameters?: readonly OpenApiParameter[];
  readonly requestBody?: OpenApiRequestBody;
  readonly responses: Readonly<Record<string, OpenApiResponse>>;
  /** Overrides the document's security; `[]` makes the operation public. */
  readonly security?: readonly OpenApiSecurityRequirement[];
  /** The app role the caller's token must carry in `roles` (admin operations only). */
  readonly 'x-required-app-role'?: string;
}

export type HttpMethod = 'get' | 'post' | 'delete';

export type OpenApiPathItem = Partial<Readonly<Record<HttpMethod, OpenApiOperation>>>;

export interface OpenApiSecurityScheme {
  readonly type: 'http';
  readonly scheme: 'bearer';
  readonly bearerFormat?: string;
  readonly description?: string;
}

export interface OpenApiDocument {
  readonly openapi: '3.1.0';
  readonly jsonSchemaDialect: string;
  readonly info: OpenApiInfo;
  readonly servers?: readonly { readonly url: string; readonly description?: string }[];
  readonly tags: readonly { readonly name: string; readonly description?: string }[];
  readonly security: readonly OpenApiSecurityRequirement[];
  readonly paths: Readonly<Record<string, OpenApiPathItem>>;
  readonly components: OpenApiComponents;
}

export interface OpenApiInfo {
  readonly title: string;
  readonly version: string;
  readonly summary?: string;
  readonly description?: string;
  readonly license?: { readonly name: string; readonly identifier?: string };
}

export interface OpenApiComponents {
  readonly schemas: Readonly<Record<string, JsonSchema>>;
  readonly headers: Readonly<Record<string, OpenApiHeader>>;
  readonly securitySchemes: Readonly<Record<string, OpenApiSecurityScheme>>;
}

export interface OpenApiDocumentOptions {
  /** Absolute URL the API is served at; absent, clients use the document's own origin. */
  readonly serverUrl?: string;
  /** The delegated scope (`scp`) every `/api` call needs (ENTRA_REQUIRED_SCOPE). */
  readonly requiredScope: string;
  /** ACS token scopes issued by default, and the only ones a caller may ask for (ACS_TOKEN_SCOPES). */
  readonly tokenScopes: readonly string[];
  /** App role that admin erasure needs (ENTRA_ADMIN_ROLE). */
  readonly adminRole: string;
  /**
   * Where the mappings are (MAPPING_STORE): what a Graph store adds (On-Behalf-Of and its claims
   * challenges, Graph's extension limit, seals) is described only when the service runs on it.
   */
  readonly mappingStore: 'graph' | 'table';
}
