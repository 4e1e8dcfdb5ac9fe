import { type ArgumentMetadata, Injectable, type PipeTransform } from '@nestjs/common';
import { createZodValidationPipe } from 'nestjs-zod';
import { ZodError } from 'zod';
import { type InputLocation, requestInvalid } from './problem-details';

// nestjs-zod parses with the DTO's schema; we rethrow its ZodError as our own 400 (with the location).
const ZodPipe = createZodValidationPipe({
  createValidationException: (error) => error as Error,
  strictSchemaDeclaration: true,
});

const LOCATION: Record<'body' | 'query' | 'param', InputLocation> = {
  body: 'body',
  query: 'query',
  param: 'path',
};

/**
 * Global pipe: parses every `@Body()`, `@Query()` and `@Param()` with its nestjs-zod DTO schema
 * (an argument without a DTO is a programming error: `strictSchemaDeclaration`). A failure throws
 * `ValidationError` (`REQUEST.INVALID`, 400) naming each bad field and where it was. A missing body
 * is parsed as `{}`, so `POST /sessions` without a body creates a session with defaults.
 * Custom decorators (headers, metadata filters) parse their own input and pass through untouched.
 */
@Injectable()
export class RequestValidationPipe implements PipeTransform {
  private readonly inner = new ZodPipe();

  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type === 'custom') return value;
    const input = metadata.type === 'body' && value === undefined ? {} : value;
    try {
      return this.inner.transform(input, metadata);
    } catch (error) {
      if (error instanceof ZodError) throw requestInvalid(LOCATION[metadata.type], error.issues);
      throw error;
    }
  }
}
