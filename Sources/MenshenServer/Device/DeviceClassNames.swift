import MenshenStorage

/// The store's device class (`MenshenStorage.DeviceClass`), named apart from the compliance
/// policy's enum of the same name and raw values (`MenshenDevice.DeviceClass`), for the files that import both.
public typealias StoreDeviceClass = DeviceClass
