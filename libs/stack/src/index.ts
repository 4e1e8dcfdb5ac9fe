export {
  CreatedKey,
  freePort,
  runKeysCli,
  ServiceGroup,
  type ServiceGroupOptions,
  type ServiceName,
  type ServiceProcess,
  SERVICES,
} from './service-group';
